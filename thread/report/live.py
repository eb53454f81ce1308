"""Replay: the live context at a step, as the model saw it, with pruned runs shown as markers.

The contract (docs/design.md, "Traces"): the live tokens at step K are the tokens written at
steps <= K less those pruned at steps <= K. A run of consecutive pruned tokens becomes one
marker naming its count and the latest prune that took part in it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from thread.report.reader import PruneRecord, Trace

MARKER = "⟦pruned {num_tokens} tokens: {label}⟧"


@dataclass(frozen=True)
class PrunedRun:
    """Consecutive transcript indices [start, end) that were pruned by `prune` (the latest)."""

    start: int
    end: int
    prune: PruneRecord

    @property
    def num_tokens(self) -> int:
        return self.end - self.start

    def marker(self) -> str:
        return MARKER.format(num_tokens=self.num_tokens, label=self.prune.label)


@dataclass(frozen=True)
class LiveText:
    """Consecutive live transcript indices [start, end) and their text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class LiveContext:
    step: int
    token_ids: list[int]
    indices: list[int]  # transcript index of each live token, in order
    pieces: list[LiveText | PrunedRun]

    @property
    def num_live(self) -> int:
        return len(self.token_ids)

    @property
    def num_pruned(self) -> int:
        return sum(p.num_tokens for p in self.pieces if isinstance(p, PrunedRun))

    def text(self, markers: bool = True) -> str:
        """The live text; with `markers`, each pruned run shows as `⟦pruned N tokens: ...⟧`."""
        parts = []
        for piece in self.pieces:
            if isinstance(piece, LiveText):
                parts.append(piece.text)
            elif markers:
                parts.append(piece.marker())
        return "".join(parts)


def live_context(trace: Trace, step: int) -> LiveContext:
    """Walk the tokens written by `step` once, grouping live and pruned runs."""
    num_written = bisect.bisect_right(trace.token_steps, step)
    ids: list[int] = []
    indices: list[int] = []
    pieces: list[LiveText | PrunedRun] = []
    run_start, run_prune = 0, None  # the open pruned run: first index, latest prune so far
    texts: list[str] = []
    for i in range(num_written):
        number = trace.pruned_by[i]
        prune = trace.prunes[number] if number >= 0 and trace.prunes[number].step <= step else None
        if prune is None:
            if run_prune is not None:
                pieces.append(PrunedRun(run_start, i, run_prune))
                run_prune = None
            if not texts:
                run_start = i
            texts.append(trace.tokens[i].text)
            ids.append(trace.tokens[i].id)
            indices.append(i)
            continue
        if texts:
            pieces.append(LiveText(run_start, i, "".join(texts)))
            texts = []
        if run_prune is None:
            run_start, run_prune = i, prune
        elif prune.step >= run_prune.step:
            run_prune = prune
    if texts:
        pieces.append(LiveText(run_start, num_written, "".join(texts)))
    if run_prune is not None:
        pieces.append(PrunedRun(run_start, num_written, run_prune))
    return LiveContext(step=step, token_ids=ids, indices=indices, pieces=pieces)
