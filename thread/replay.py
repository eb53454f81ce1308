"""Teacher forcing: make the decode loop write a known document, token by token.

The chooser picks, at each step, the token that continues the gold text from where the
transcript stands, so the runtime's real machinery (parser, rules, tools, cache) runs on a
fixed script. Benchmarks replay gold traces with it; tests use it as a scripted model.
Text the runtime writes itself (tool results) must match the gold text too, or replay stops.
"""

from __future__ import annotations

from typing import Any

import torch


class ReplayMismatch(RuntimeError):
    """The transcript left the gold text (a tool wrote something else than the gold result)."""


class Replay:
    """A chooser for `DecodeLoop`: the next token of `text` after what has been written."""

    def __init__(self, tokenizer: Any, text: str, controller: Any, eos_id: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.text = text
        self.controller = controller
        self.eos_id = eos_id
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        self.ids = list(encoding["input_ids"])
        # the first gold token at each start offset (byte tokens of one character share it)
        self.first_at: dict[int, int] = {}
        for n, (start, _) in enumerate(encoding["offset_mapping"]):
            self.first_at.setdefault(start, n)

    def __call__(self, logits: torch.Tensor) -> int:
        done = self.controller.transcript.num_chars
        written = self.controller.parser.text
        if not self.text.startswith(written):
            raise ReplayMismatch(f"transcript left the gold text at char {_first_difference(written, self.text)}")
        if done >= len(self.text):
            if self.eos_id is None:
                raise ReplayMismatch("the gold text is fully written but the document is not finished")
            return self.eos_id
        # Tokens written since the last whole character (byte pieces of a multi-byte one) hold
        # no text yet: go on with the gold tokens after them.
        num_pending = self.controller.detok.num_pending
        first = self.first_at.get(done)
        if first is not None and first + num_pending < len(self.ids):
            return self.ids[first + num_pending]
        # mid-token after a runtime write: tokenize the rest afresh
        rest = self.tokenizer.encode(self.text[done : done + 64], add_special_tokens=False)
        return rest[num_pending]


def _first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
