"""The ledger: what one solve cost, counted as it runs.

Tokens prefilled, decoded, re-encoded by `exact` collapses, written by tools and pruned; the
live size at every decode step, and the attention reads it implies beside those had nothing
been pruned; wall time per phase; the cost of each finished subtask. The runtime calls the
`on_*` hooks; this module computes nothing about models and needs no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SubtaskCost:
    """Tokens decoded inside one finished subtask, and its wall time."""

    tokens: int
    seconds: float


@dataclass
class Ledger:
    """Counted costs of one solve. `clock` is injectable so tests can fix the time."""

    prefilled: int = 0
    decoded: int = 0
    forced: int = 0  # tokens the grammar forced: run through the model, never sampled
    reencoded: int = 0
    tool_tokens: int = 0
    pruned: int = 0
    peak_live: int = 0
    attention_reads: int = 0  # sum over decode steps of the live size
    unpruned_reads: int = 0  # the same sum had nothing been pruned
    phase_seconds: dict[str, float] = field(default_factory=dict)
    subtasks: dict[str, SubtaskCost] = field(default_factory=dict)
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False, compare=False)

    # 1) hooks the runtime calls

    def on_prefill(self, n: int, live: int) -> None:
        assert n >= 0 and live >= 0, f"{n=} {live=}"
        self.prefilled += n
        self.peak_live = max(self.peak_live, live)

    def on_decode(self, live: int, unpruned_live: int) -> None:
        """One decode step that attended over `live` tokens (`unpruned_live` without pruning)."""
        assert 0 <= live <= unpruned_live, f"{live=} {unpruned_live=}"
        self.decoded += 1
        self.attention_reads += live
        self.unpruned_reads += unpruned_live
        self.peak_live = max(self.peak_live, live)

    def on_tool(self, tokens: int) -> None:
        assert tokens >= 0, f"{tokens=}"
        self.tool_tokens += tokens

    def on_forced(self, n: int) -> None:
        assert n >= 0, f"{n=}"
        self.forced += n

    def on_prune(self, freed: int, reencoded: int, live_before: int = 0) -> None:
        """A prune of `freed` slots; `live_before` (the live size it cut) can be a new peak."""
        assert freed >= 0 and reencoded >= 0, f"{freed=} {reencoded=}"
        self.peak_live = max(self.peak_live, live_before)
        self.pruned += freed
        self.reencoded += reencoded

    def on_subtask_closed(self, path: str, tokens: int, seconds: float) -> None:
        assert path not in self.subtasks, f"subtask {path=} closed twice"
        self.subtasks[path] = SubtaskCost(tokens, seconds)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the `with` body to phase `name` (phases may repeat)."""
        start = self.clock()
        try:
            yield
        finally:
            self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + self.clock() - start

    # 2) derived figures

    @property
    def computed(self) -> int:
        """Tokens the model ran forward on: prefilled, decoded, forced, re-encoded, tool tokens."""
        return self.prefilled + self.decoded + self.forced + self.reencoded + self.tool_tokens

    @property
    def mean_live(self) -> float:
        """Mean live size over decode steps (0 before the first)."""
        return self.attention_reads / self.decoded if self.decoded else 0.0

    @property
    def reads_saved(self) -> float:
        """Share of attention reads pruning avoided: 1 - reads / reads had nothing been pruned."""
        return 1 - self.attention_reads / self.unpruned_reads if self.unpruned_reads else 0.0

    def subtask_means(self) -> dict[str, float]:
        """Mean tokens and seconds per finished subtask."""
        n = len(self.subtasks)
        if not n:
            return {"tokens": 0.0, "seconds": 0.0}
        return {
            "tokens": sum(c.tokens for c in self.subtasks.values()) / n,
            "seconds": sum(c.seconds for c in self.subtasks.values()) / n,
        }

    def to_json(self) -> dict:
        return {
            "prefilled": self.prefilled,
            "decoded": self.decoded,
            "forced": self.forced,
            "reencoded": self.reencoded,
            "tool_tokens": self.tool_tokens,
            "pruned": self.pruned,
            "computed": self.computed,
            "peak_live": self.peak_live,
            "mean_live": self.mean_live,
            "attention_reads": self.attention_reads,
            "unpruned_reads": self.unpruned_reads,
            "reads_saved": self.reads_saved,
            "phase_seconds": dict(self.phase_seconds),
            "subtasks": {
                p: {"tokens": c.tokens, "seconds": c.seconds} for p, c in self.subtasks.items()
            },
            "num_subtasks": len(self.subtasks),
            "per_subtask": self.subtask_means(),
        }
