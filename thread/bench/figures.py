"""What a benchmark is made of: its options, the model under test, goals and measured figures.

A figure is a ratio measured several times; its row in the table is the median with the range.
Nothing here measures anything or touches torch.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

FIGURES = ("P1", "P2", "P3", "P4", "P5")
FAMILIES = ("chain", "arith")


class BenchError(ValueError):
    """A benchmark option that cannot be used; the message names it and what is allowed."""


@dataclass(frozen=True)
class Goal:
    op: str  # "<=" or ">="
    value: float

    def met(self, x: float) -> bool:
        return x <= self.value if self.op == "<=" else x >= self.value

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.value:g}"


GOALS = {
    "P1": Goal(">=", 1.0),
    "P2": Goal("<=", 0.33),
    "P3": Goal("<=", 0.2),
    "P4": Goal("<=", 1.0),
    "P5": Goal("<=", 0.1),
    "P5 flat": Goal("<=", 1.1),  # peak live at the longest horizon / at the shortest
}


@dataclass
class Figure:
    """One row of the table: a ratio measured `len(ratios)` times, and what it was made of.

    `valid` is False when a run it rests on did not finish its document; such a figure never
    meets its goal, whatever its ratio.
    """

    figure: str
    name: str
    ratios: list[float]
    goal: Goal | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    valid: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.valid and self.goal.met(self.median)

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "name": self.name,
            "median": self.median,
            "low": self.low,
            "high": self.high,
            "ratios": self.ratios,
            "goal": str(self.goal) if self.goal else None,
            "met": self.met,
            "valid": self.valid,
            "detail": self.detail,
        }


@dataclass
class BenchOptions:
    """Sizes of the benchmark, chosen so that SmolLM2 (fp32, two CPU cores) runs all figures in
    about 12 minutes: some 7,000 decode steps, most of them in the four 10x replays.

    Horizons are trace lengths in multiples of the live budget; `budget=None` takes the peak
    live tokens of a small gold trace under the `window` rules (no model needed), plus 10 %.
    """

    runs: int = 3  # P1 and P4
    replay_runs: int = 1  # P2 and P3: each run is a full replay of every mode
    decode_tokens: int = 48  # P1: new tokens per run
    budget: int | None = None
    horizons: tuple[float, ...] = (2, 5, 10)  # P5 at each; P2 and P3 at the longest
    families: tuple[str, ...] = ("chain",)
    cache_tokens: int = 4000  # P4: size of the cache that is pruned
    fractions: tuple[float, ...] = (0.1, 0.5, 0.9)
    seed: int = 0

    def __post_init__(self) -> None:
        self.horizons = tuple(sorted(self.horizons))
        checks = [
            ("runs", self.runs, self.runs >= 1, ">= 1"),
            ("replay_runs", self.replay_runs, self.replay_runs >= 1, ">= 1"),
            ("decode_tokens", self.decode_tokens, self.decode_tokens >= 1, ">= 1"),
            ("budget", self.budget, self.budget is None or self.budget >= 16, ">= 16 or None"),
            ("horizons", self.horizons, bool(self.horizons) and self.horizons[0] > 0, "> 0"),
            ("cache_tokens", self.cache_tokens, self.cache_tokens >= 20, ">= 20"),
            ("fractions", self.fractions, all(0 < f < 1 for f in self.fractions), "in (0, 1)"),
            ("families", self.families, set(self.families) <= set(FAMILIES), str(FAMILIES)),
        ]
        for name, value, ok, allowed in checks:
            if not ok:
                raise BenchError(f"{name}={value!r}: allowed {allowed}")

    @classmethod
    def quick(cls, runs: int = 2) -> BenchOptions:
        """Small sizes for a smoke test: seconds on a tiny model, a few minutes on SmolLM2."""
        return cls(runs=runs, replay_runs=1, decode_tokens=16, horizons=(1, 3), cache_tokens=400)


@dataclass
class Target:
    """The model under test and what its prompts need."""

    name: str
    model: Any
    tokenizer: Any
    fmt: Any
    config: dict = field(default_factory=dict)  # the model's thread.json over its style's defaults
    eos_ids: frozenset[int] = frozenset()

    @classmethod
    def from_session(cls, session: Any) -> Target:
        return cls(
            session.model_name,
            session.model,
            session.tokenizer,
            session.fmt,
            session.config,
            session.eos_ids,
        )
