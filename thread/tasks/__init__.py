"""Evaluation task families with exact answers: `arith` (recursive) and `chain` (multi-hop).

Each family makes seeded instances at any size (`make(size, seed)`), writes the gold Thread-2
document a perfect solver would write, and checks answers exactly. `views` turns a gold
document into the live views the runtime shows the model under the `window` rule set.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TaskTextError(ValueError):
    """A task text (or its table) that a family cannot read."""


@dataclass
class Instance:
    family: str
    size: int
    text: str  # the task text given to `thread solve`
    answer: str
    table: dict[str, str] | None = None  # the `lookup` table: chain's, or arith's tape
    document: dict = field(default_factory=dict)  # gold Thread-2 document

    def check(self, answer: object) -> bool:
        """Exact match of an answer (string or number) with the gold answer."""
        return answer is not None and str(answer).strip() == self.answer


FAMILIES = ("arith", "chain")


def make(family: str, size: int, seed: int) -> Instance:
    """A seeded instance of `family` at `size` (operations for arith, hops for chain)."""
    from thread.tasks import arith, chain

    makers = {"arith": arith.make, "chain": chain.make}
    if family not in makers:
        raise TaskTextError(f"family {family!r}: expected one of {', '.join(FAMILIES)}")
    if size < 1:
        raise TaskTextError(f"size {size}: must be >= 1")
    return makers[family](size, seed)
