"""The transcript: every token a run has written, and the document characters each one holds.

Tokens and characters do not line up: a BPE token may hold `"},` (three structural characters)
or half of a multi-byte character. The detokenizer gives each token the characters it completes;
the transcript keeps each token's character span so that a character span chosen by a rule maps
to tokens. The boundary choice, documented in the README: a token is pruned only when all of its
characters lie inside the span; a token that straddles an edge stays live.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Protocol

REPLACEMENT = "\ufffd"


class Tokenizer(Protocol):
    def decode(self, ids: list[int], skip_special_tokens: bool = ...) -> str: ...


class Detokenizer:
    """Incremental decoding, token by token, that never splits a character.

    Decodes a short window of recent tokens and emits the difference, so tokenizers that drop a
    leading space at the start of a decode (SentencePiece) still give the right text. A token
    that ends inside a multi-byte character yields "" and its character goes to the token that
    completes it.
    """

    def __init__(self, tokenizer: Tokenizer, window: int = 6) -> None:
        self.tokenizer = tokenizer
        self.window = window
        self.ids: list[int] = []
        self.read_offset = 0  # ids[:read_offset] have emitted all their text
        self._history: list[int] = []

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        self._history.append(self.read_offset)
        start = max(0, self.read_offset - self.window)
        before = self._decode(self.ids[start : self.read_offset])
        after = self._decode(self.ids[start:])
        if after.endswith(REPLACEMENT) or not after.startswith(before):
            return ""
        self.read_offset = len(self.ids)
        return after[len(before) :]

    @property
    def num_pending(self) -> int:
        """Tokens pushed since the last whole character: they hold no text yet."""
        return len(self.ids) - self.read_offset

    def pop(self) -> None:
        self.ids.pop()
        self.read_offset = self._history.pop()

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False) if ids else ""


@dataclass
class Transcript:
    """Token ids with their source, step and document character span, in order written.

    Prompt tokens come first and hold no document characters; `doc_start` is the index of the
    first document token.
    """

    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    doc_start: int = 0
    num_chars: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add_prompt(self, ids: list[int], texts: list[str]) -> None:
        for i, t in zip(ids, texts):
            self._append(i, t, 0, 0, "prompt", 0)
        self.doc_start = len(self.ids)

    def add(self, token_id: int, text: str, source: str, step: int) -> int:
        """Append a document token holding `text`; return its transcript index."""
        start = self.num_chars
        self.num_chars += len(text)
        self._append(token_id, text, start, self.num_chars, source, step)
        return len(self.ids) - 1

    def pop(self) -> tuple[int, str]:
        """Remove the last token (used when a tool call cuts a token short)."""
        token_id, text = self.ids.pop(), self.texts.pop()
        self.num_chars = self.starts.pop()
        self.ends.pop(), self.sources.pop(), self.steps.pop()
        return token_id, text

    def tokens_within(self, start: int, end: int) -> list[int]:
        """Indices of document tokens whose characters lie wholly inside [start, end)."""
        lo = bisect.bisect_left(self.starts, start, lo=self.doc_start)
        out = []
        for i in range(lo, len(self.ids)):
            if self.starts[i] >= end:
                break
            if self.ends[i] <= end:
                out.append(i)
        return out

    def _append(self, token_id: int, text: str, start: int, end: int, source: str, step: int) -> None:
        self.ids.append(token_id)
        self.texts.append(text)
        self.starts.append(start)
        self.ends.append(end)
        self.sources.append(source)
        self.steps.append(step)

    def to_json(self) -> dict[str, Any]:
        return {"num_tokens": len(self.ids), "num_prompt_tokens": self.doc_start, "num_chars": self.num_chars}
