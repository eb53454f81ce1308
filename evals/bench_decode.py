"""Decode throughput: the runtime's decode loop against `model.generate` on the same model, the
same prompt and the same number of new tokens; greedy, pruning off (rule set `none`), no tools.
Both timings include the prefill. Printed as tokens/s and a ratio (runtime / generate).
Goals: >= 1.0 with grammar fast-forward, >= 0.9 without.

    .venv/bin/python evals/bench_decode.py [--model smollm2] [--tokens 96] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from thread.constrain import GrammarConstraint, bounds_from_config
from thread.controller import Controller
from thread.prompting import build_prompt
from thread.rules import load_rules
from thread.runner import DecodeLoop, Sampling
from thread.solve import Session
from thread.tools import ToolRegistry

TASK = "Plan a picnic for four friends: food, place, time."


class NoFastForward:
    """The same constraint, but it never forces: every token costs a model pick."""

    def __init__(self, constraint: GrammarConstraint) -> None:
        self.inner = constraint

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def forced(self) -> list[int]:
        return []


def run_runtime(
    session: Session, prompt_ids: list[int], num_tokens: int, fast_forward: bool
) -> dict:
    constraint = GrammarConstraint(
        session.tokenizer, session.fmt, bounds_from_config(session.config)
    )
    controller = Controller(
        session.fmt, load_rules("none", session.fmt), session.tokenizer, tools=ToolRegistry()
    )
    loop = DecodeLoop(
        session.model,
        controller,
        Sampling(temperature=0.0),
        constraint=constraint if fast_forward else NoFastForward(constraint),
        max_new_tokens=num_tokens,
        eos_ids=session.eos_ids,
    )
    started = time.perf_counter()
    stats = loop.run(prompt_ids)
    seconds = time.perf_counter() - started
    new = len(controller.transcript) - len(prompt_ids)
    return {"new": new, "seconds": seconds, "forced": stats.num_forced, "status": stats.status}


def run_generate(session: Session, prompt_ids: list[int], num_tokens: int) -> dict:
    ids = torch.tensor([prompt_ids], device=session.model.device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = session.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=num_tokens,
            min_new_tokens=num_tokens,
            do_sample=False,
            pad_token_id=session.tokenizer.eos_token_id,
        )
    seconds = time.perf_counter() - started
    return {"new": out.shape[1] - ids.shape[1], "seconds": seconds}


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--model", default="smollm2")
    args.add_argument("--tokens", type=int, default=96, help="new tokens the runtime may pick")
    args.add_argument("--repeat", type=int, default=2, help="best of this many runs each")
    args.add_argument("--dtype", default="float32")
    opts = args.parse_args()
    console = Console()

    # 1) one model, one prompt for every run
    with console.status(f"loading {opts.model}"):
        session = Session(opts.model, dtype=opts.dtype)
    prompt_ids = build_prompt(
        session.tokenizer, TASK, tools=ToolRegistry(), fmt=session.fmt, config=session.config
    )

    # 2) interleaved runs, best of `repeat`; generate makes exactly as many tokens as the runtime did
    best: dict[str, dict] = {}
    for _ in range(opts.repeat):
        for name, fast_forward in (
            ("runtime, fast-forward", True),
            ("runtime, no fast-forward", False),
        ):
            with console.status(name):
                run = run_runtime(session, prompt_ids, opts.tokens, fast_forward)
            with console.status(f"generate, {run['new']} tokens"):
                ref = run_generate(session, prompt_ids, run["new"])
            for key, value in ((name, run), (f"generate vs {name}", ref)):
                if key not in best or value["seconds"] < best[key]["seconds"]:
                    best[key] = value

    # 3) the table and the ratios
    table = Table(
        title=f"decode throughput, {opts.model} {opts.dtype}, prompt {len(prompt_ids)} tokens"
    )
    for column in ("run", "new tokens", "forced", "seconds", "tokens/s", "ratio", "goal"):
        table.add_column(column)
    for name, goal in (("runtime, fast-forward", 1.0), ("runtime, no fast-forward", 0.9)):
        run, ref = best[name], best[f"generate vs {name}"]
        ratio = (run["new"] / run["seconds"]) / (ref["new"] / ref["seconds"])
        table.add_row(
            "generate",
            str(ref["new"]),
            "-",
            f"{ref['seconds']:.2f}",
            f"{ref['new'] / ref['seconds']:.1f}",
            "",
            "",
        )
        table.add_row(
            name,
            str(run["new"]),
            str(run["forced"]),
            f"{run['seconds']:.2f}",
            f"{run['new'] / run['seconds']:.1f}",
            f"{ratio:.2f}",
            f">= {goal} {'met' if ratio >= goal else 'MISSED'}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
