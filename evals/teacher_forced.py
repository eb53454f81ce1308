"""Teacher-forced episode check of a thread-tiny model on the suites in evals/suites.toml.

Every live view of a gold episode goes through the model in one batched forward; a view is
right iff the argmax is the gold token at every model-written position. With views that hold
all the state (the `window` rule set), an episode whose views are all right is exactly what
greedy decoding in the runtime would write, so "exact episodes" is the solve accuracy.

    .venv/bin/python evals/teacher_forced.py [--model DIR] [--suite chain] [--sizes 10,100]
    .venv/bin/python evals/teacher_forced.py --expressions evals/examples/expressions.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from thread.tasks import arith, make  # noqa: E402
from thread.tasks.samples import episode_views  # noqa: E402
from thread.tasks.views import View  # noqa: E402
from thread.train import encoder_for  # noqa: E402

DEFAULT_MODEL = ROOT / "thread" / "assets" / "thread-tiny"


def load_suites(path: Path = ROOT / "evals" / "suites.toml") -> dict:
    return tomllib.loads(path.read_text())


@torch.no_grad()
def views_correct(model, views: list[View], tokens_per_batch: int = 16384) -> list[bool]:
    """For each view: is the argmax right at every model-written position?"""
    order = sorted(range(len(views)), key=lambda i: len(views[i].ids))
    ok = [False] * len(views)
    i = 0
    while i < len(order):
        longest = len(views[order[i]].ids)
        j = i
        while j < len(order) and len(views[order[j]].ids) * (j - i + 1) <= tokens_per_batch:
            longest = len(views[order[j]].ids)
            j += 1
        j = max(j, i + 1)
        batch = [views[k] for k in order[i:j]]
        ids = torch.zeros(len(batch), longest, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, v in enumerate(batch):
            ids[b, : len(v.ids)] = torch.tensor(v.ids)
            mask[b, : len(v.ids)] = 1
        pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)  # [B, T]
        for b, v in enumerate(batch):
            start = len(v.context)
            right = all(
                int(pred[b, p - 1]) == t
                for p, (t, src) in enumerate(v.new, start=start)
                if src == "model"
            )
            ok[order[i + b]] = right
        i = j
    return ok


def evaluate(model, tokenizer, family: str, sizes: list[int], seeds: int) -> list[dict]:
    """One row per size: per-view accuracy, exact episodes, live and unpruned token counts."""
    return [
        _row(model, tokenizer, family, size, [make(family, size, seed) for seed in range(seeds)])
        for size in sizes
    ]


def read_expressions(path: Path) -> list:
    """Instances for the arith expressions in `path`, one a line (`#` starts a comment)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [arith.solve_gold(line) for line in lines if line and not line.startswith("#")]


def _row(model, tokenizer, family: str, size, instances: list) -> dict:
    encode = encoder_for(tokenizer)
    t0 = time.monotonic()
    num_views = num_right = num_exact = 0
    peak, unpruned, first_fail, failed = [], [], [], []
    for inst in instances:
        views = episode_views(inst, encode)
        ok = views_correct(model, views)
        num_views += len(ok)
        num_right += sum(ok)
        num_exact += all(ok)
        peak.append(max(len(v.ids) for v in views))
        unpruned.append(len(views[0].context) + sum(len(v.new) for v in views))
        if not all(ok):
            first_fail.append(ok.index(False))
            failed.append(inst.text)
    return {
        "family": family,
        "size": size,
        "episodes": len(instances),
        "exact": num_exact / len(instances),
        "view_accuracy": num_right / num_views,
        "views": num_views,
        "peak_live_tokens": max(peak),
        "mean_peak_live_tokens": sum(peak) / len(peak),
        "unpruned_tokens": sum(unpruned) / len(unpruned),
        "first_failing_view": first_fail,
        "failed": failed,
        "seconds": time.monotonic() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--suite", action="append", help="suite name(s) from suites.toml (default: arith, chain)")
    ap.add_argument("--sizes", help="comma-separated sizes overriding the suite's")
    ap.add_argument("--seeds", type=int, help="instances per size overriding the suite's")
    ap.add_argument(
        "--expressions", type=Path, help="also check the arith expressions in this file, one a line"
    )
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    suites = load_suites()
    rows = []
    jobs = []
    for name in args.suite or ([] if args.expressions else ["arith", "chain"]):
        suite = suites[name]
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else suite["sizes"]
        seeds = args.seeds or suite["seeds"]
        for size in sizes:
            instances = [make(suite["family"], size, s) for s in range(seeds)]
            jobs.append((suite["family"], size, instances))
    if args.expressions:
        jobs.append(("arith", args.expressions.name, read_expressions(args.expressions)))
    for family, size, instances in jobs:
        row = _row(model, tokenizer, family, size, instances)
        rows.append(row)
        print(
            f"{row['family']:6} size {row['size']:5}  views {row['view_accuracy']:.4%}  "
            f"exact {row['exact']:.0%} of {row['episodes']}  peak live {row['peak_live_tokens']}  "
            f"unpruned {row['unpruned_tokens']:.0f}  ({row['seconds']:.0f}s)",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
