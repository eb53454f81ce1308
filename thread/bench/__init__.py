"""Benchmarks: what pruning buys, each figure a ratio of two runs measured in the same process.

P1 decode tokens/s against `model.generate` (`decode`); P2, P3, P5 teacher-forced replays of
gold traces, pruned against unpruned and against a re-prefill agent loop, at growing horizons
(`replays`, `horizons`); P4 one prune against one decode step (`prune`). It measures and returns
figures; the CLI (`thread bench`) prints them. It does not judge answers: replays write gold.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from typing import Any

import torch

from thread.bench.figures import (
    FAMILIES,
    FIGURES,
    GOALS,
    BenchError,
    BenchOptions,
    Figure,
    Goal,
    Target,
)

__all__ = [
    "FAMILIES",
    "FIGURES",
    "GOALS",
    "BenchError",
    "BenchOptions",
    "Figure",
    "Goal",
    "Target",
    "machine_info",
    "parse_figures",
    "run_bench",
]


def run_bench(
    target: Target,
    options: BenchOptions,
    only: tuple[str, ...] = FIGURES,
    on_progress: Callable[[str], None] | None = None,
) -> list[Figure]:
    """Measure the figures named in `only` on `target`, in the order P1, P2/P3/P5, P4."""
    from thread.bench.decode import decode_figures
    from thread.bench.horizons import horizon_figures
    from thread.bench.prune import prune_figures

    only = parse_figures(",".join(only))
    say = on_progress or (lambda _: None)
    figures: list[Figure] = []
    if "P1" in only:
        figures += decode_figures(target, options, say)
    if {"P2", "P3", "P5"} & set(only):
        for family in options.families:
            figures += horizon_figures(target, family, options, only, say)
    if "P4" in only:
        figures += prune_figures(target, options, say)
    return figures


def parse_figures(text: str) -> tuple[str, ...]:
    """`"P1,p4"` -> `("P1", "P4")`; unknown names raise BenchError."""
    names = tuple(dict.fromkeys(n.strip().upper() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FIGURES]
    if unknown or not names:
        raise BenchError(f"figures={text!r}: allowed a comma list of {', '.join(FIGURES)}")
    return names


def machine_info() -> dict[str, Any]:
    """Where the figures were measured: they are ratios, but ratios still depend on the machine."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info
