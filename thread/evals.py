"""Long-horizon evaluation: solve seeded instances of a task family at growing sizes, with pruning
on and off, and report accuracy, live tokens, trace tokens, wall time and the summed ledger.

Suites are declared in `evals/suites.toml`. Both runs of a size share the model's context
window as their live budget, so the unpruned run shows where a plain context gives out. This
module measures and writes results; the CLI draws the progress bar and the table.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thread.assets import asset_dir
from thread.tasks import Instance, make

logger = logging.getLogger(__name__)


class SuiteError(ValueError):
    """An unknown suite or a malformed suite declaration."""


@dataclass(frozen=True)
class Suite:
    name: str
    family: str
    sizes: tuple[int, ...]
    seeds: int
    rules: str


def get_suite(name: str, sizes: list[int] | None = None, seeds: int | None = None, path: str | Path | None = None) -> Suite:
    """The suite `name` from evals/suites.toml, with its sizes or seed count overridden if given."""
    path = Path(path) if path else asset_dir("evals") / "suites.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if name not in data:
        raise SuiteError(f"no suite {name!r} in {path}; known: {', '.join(data)}")
    spec = data[name]
    try:
        suite = Suite(name, spec["family"], tuple(int(s) for s in spec["sizes"]), int(spec.get("seeds", 5)), spec.get("rules", "window"))
    except (KeyError, TypeError, ValueError) as exc:
        raise SuiteError(f"{path}: suite {name!r} is malformed ({exc}); it needs family, sizes, seeds, rules") from None
    if sizes:
        suite = Suite(suite.name, suite.family, tuple(sizes), suite.seeds, suite.rules)
    if seeds is not None:
        suite = Suite(suite.name, suite.family, suite.sizes, seeds, suite.rules)
    return suite


def run_one(session: Any, instance: Instance, *, rules: str, budget: int | None, trace: Path | None) -> dict[str, Any]:
    """Solve one instance; the row records the answer check, live sizes, trace tokens and ledger."""
    t0 = time.perf_counter()
    # Room for the whole gold document (a token holds at least one character), so that a long
    # horizon is never cut by the default token cap; a model that loops still stops there.
    cap = len(json.dumps(instance.document)) + 256
    result = session.solve(
        instance.text, table=instance.table, rules=rules, max_live_tokens=budget, trace=trace, max_new_tokens=cap
    )
    ledger = result.ledger
    return {
        "family": instance.family, "size": instance.size, "rules": rules, "pruning": rules != "none",
        "correct": instance.check(result.answer), "status": result.status, "answer": result.answer,
        "expected": instance.answer, "peak_live": int(ledger.get("peak_live", 0)),
        "mean_live": float(ledger.get("mean_live", 0.0)),
        "trace_tokens": sum(ledger.get(k, 0) for k in ("prefilled", "decoded", "forced", "tool_tokens")),
        "seconds": time.perf_counter() - t0, "ledger": ledger,
    }


def run_suite(
    session: Any,
    suite: Suite,
    *,
    pruning: tuple[bool, ...] = (True, False),
    budget: int | None = None,
    trace_dir: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Solve every instance under `suite.rules` (pruning on) and `none` (off), within one live
    budget: the model's context window unless `budget` is given."""
    budget = budget or session.config.get("context_window")
    rows = []
    for size in suite.sizes:
        for seed in range(suite.seeds):
            instance = make(suite.family, size, seed)
            for on in pruning:
                rules = suite.rules if on else "none"
                trace = trace_dir / f"{suite.family}-{size}-{seed}-{rules}.jsonl" if trace_dir else None
                row = {"suite": suite.name, "seed": seed, **run_one(session, instance, rules=rules, budget=budget, trace=trace)}
                rows.append(row)
                if on_row:
                    on_row(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (suite, size, pruning): accuracy, peak and mean live, trace tokens, time, ledger."""
    out = []
    keys = sorted({(r["suite"], r["size"], r["pruning"]) for r in rows}, key=lambda k: (k[0], k[1], not k[2]))
    for suite, size, on in keys:
        group = [r for r in rows if (r["suite"], r["size"], r["pruning"]) == (suite, size, on)]
        statuses: dict[str, int] = {}
        for r in group:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        out.append({
            "suite": suite, "size": size, "pruning": on, "n": len(group),
            "accuracy": sum(r["correct"] for r in group) / len(group),
            "peak_live": max(r["peak_live"] for r in group),
            "mean_live": statistics.fmean(r["mean_live"] for r in group),
            "trace_tokens": statistics.fmean(r["trace_tokens"] for r in group),
            "seconds": statistics.fmean(r["seconds"] for r in group),
            "statuses": statuses,
            "ledger": sum_ledgers([r["ledger"] for r in group]),
        })
    return out


RATIOS = ("mean_live", "reads_saved", "per_subtask")  # means: recomputed or dropped, never added up


def sum_ledgers(ledgers: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and seconds added up over solves; the peak is the largest, the ratios recomputed."""
    out: dict[str, Any] = {}
    for ledger in ledgers:
        for k, v in ledger.items():
            if k in RATIOS or isinstance(v, bool) or not isinstance(v, (int, float, dict)):
                continue
            if k == "peak_live":
                out[k] = max(out.get(k, 0), v)
            elif isinstance(v, dict):
                if all(isinstance(x, (int, float)) for x in v.values()):
                    inner = out.setdefault(k, {})
                    for name, x in v.items():
                        inner[name] = inner.get(name, 0) + x
            else:
                out[k] = out.get(k, 0) + v
    decoded, reads, unpruned = (out.get(k, 0) for k in ("decoded", "attention_reads", "unpruned_reads"))
    out["mean_live"] = reads / decoded if decoded else 0.0
    out["reads_saved"] = 1 - reads / unpruned if unpruned else 0.0
    return out


def plot(summary: list[dict[str, Any]], path: Path, context_window: int | None = None) -> None:
    """Accuracy and peak live tokens against horizon, pruning on and off; the window as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, live) = plt.subplots(1, 2, figsize=(10, 4))
    for on, style in ((True, "o-"), (False, "s--")):
        sel = [r for r in summary if r["pruning"] == on]
        label = "pruning on" if on else "pruning off"
        sizes = [r["size"] for r in sel]
        acc.plot(sizes, [100 * r["accuracy"] for r in sel], style, label=label)
        live.plot(sizes, [r["peak_live"] for r in sel], style, label=f"{label}: peak live")
        live.plot(sizes, [r["trace_tokens"] for r in sel], ":", alpha=0.6, label=f"{label}: trace tokens")
    if context_window:
        live.axhline(context_window, color="grey", lw=1, label=f"context window {context_window}")
    acc.set(xlabel="horizon (size)", ylabel="exact accuracy (%)", ylim=(-5, 105), xscale="log")
    live.set(xlabel="horizon (size)", ylabel="tokens", xscale="log", yscale="log")
    horizons = sorted({r["size"] for r in summary})
    for ax in (acc, live):
        ax.set_xticks(horizons, [f"{h:,}" for h in horizons])  # the sizes run, not powers of ten
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(", ".join(sorted({r["suite"] for r in summary})))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
