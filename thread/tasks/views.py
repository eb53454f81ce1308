"""Gold Thread-2 streams and the live views the runtime shows under the `window` rule set.

A gold document is written as segments (prompt, model-written runs, tool results) with the
prune decisions the `window` rules take at each task close: collapse the closing task's
`subtasks`, keep only the last K finished siblings of its list. `live_views` replays that
stream over a token encoder and returns what the model sees between two prunes, which is
exactly a training example. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

FIELD_ORDER = ("title", "thought", "tooluse", "subtasks", "conclusion")
WINDOW_K = 2

# encode(text) -> [(token_id, start, end)], character offsets into text
Encoder = Callable[[str], list[tuple[int, int, int]]]


@dataclass(frozen=True)
class Segment:
    text: str
    source: str  # "prompt" | "model" | "tool"


@dataclass
class Stream:
    """A gold stream: segments, and after which segment each prune happens."""

    segments: list[Segment]
    prunes: list[tuple[int, list[tuple[int, int]]]]  # (num segments written, char spans)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass
class View:
    """What the model sees from one prune to the next: kept tokens, then new segments."""

    context: list[int]
    new: list[tuple[int, str]] = field(default_factory=list)  # (token id, source)

    @property
    def ids(self) -> list[int]:
        return self.context + [t for t, _ in self.new]

    @property
    def num_model(self) -> int:
        return sum(1 for _, s in self.new if s == "model")


class _ListState:
    """Finished siblings of one open list: [start, end of its following separator)."""

    def __init__(self) -> None:
        self.finished: list[list[int]] = []  # [start, end]; end grows over the separator
        self.num_pruned = 0


class _Writer:
    def __init__(self, prompt: str, k: int) -> None:
        self.segments = [Segment(prompt, "prompt")]
        self.prunes: list[tuple[int, list[tuple[int, int]]]] = []
        self.offset = len(prompt)
        self.k = k
        self._sealed = True

    def write(self, text: str, source: str = "model") -> None:
        last = self.segments[-1]
        if not self._sealed and last.source == source:
            self.segments[-1] = Segment(last.text + text, source)
        else:
            self.segments.append(Segment(text, source))
        self._sealed = False
        self.offset += len(text)

    def prune(self, spans: list[tuple[int, int]]) -> None:
        self._sealed = True
        if spans:
            self.prunes.append((len(self.segments), spans))

    def task(self, task: dict, siblings: _ListState, open_end: bool = False) -> None:
        """Write `task`; with `open_end` stop after its last subtask, leaving it open."""
        unknown = set(task) - set(FIELD_ORDER)
        assert not unknown, f"{unknown=}"
        start = self.offset
        self.write("{")
        names = [n for n in FIELD_ORDER if n in task]
        seps: list[tuple[int, int]] = []  # separator before each field after the first
        sub_span = None
        for i, name in enumerate(names):
            if i:
                seps.append((self.offset, self.offset + 2))
                self.write(", ")
            field_start = self.offset
            if name == "tooluse":
                self.tooluse(task[name])
            elif name == "subtasks":
                self.write('"subtasks": [')
                inner = _ListState()
                for j, child in enumerate(task[name]):
                    if j:
                        inner.finished[-1][1] = self.offset + 2
                        self.write(", ")
                    self.task(child, inner)
                if open_end:
                    return
                self.write("]")
                sub_span = (i, field_start, self.offset)
            else:
                self.write(f"{json.dumps(name)}: {json.dumps(task[name], ensure_ascii=False)}")
        self.write("}")

        # 1) collapse the own subtasks field with one adjacent separator
        spans = []
        if sub_span is not None:
            i, s, e = sub_span
            if i < len(names) - 1:
                spans.append((s, seps[i][1]))
            elif i > 0:
                spans.append((seps[i - 1][0], e))
            else:
                spans.append((s, e))
        # 2) window: keep the last k finished siblings of the holding list
        siblings.finished.append([start, self.offset])
        while len(siblings.finished) - siblings.num_pruned > self.k:
            s, e = siblings.finished[siblings.num_pruned]
            spans.append((s, e))
            siblings.num_pruned += 1
        self.prune(spans)

    def tooluse(self, tooluse: dict) -> None:
        head = {"tool_name": tooluse["tool_name"], "parameters": tooluse["parameters"]}
        text = json.dumps(head, ensure_ascii=False)[:-1]  # open: the runtime inserts the result
        self.write(f'"tooluse": {text}')
        result = json.dumps(tooluse["tool_result"], ensure_ascii=False)
        self.write(f', "tool_result": {result}', "tool")
        self.write("}")


def gold_stream(prompt: str, doc: dict, k: int = WINDOW_K, open_end: bool = False) -> Stream:
    """Write `doc` after `prompt` as the runtime would see it, with the window-rule prunes.

    With `open_end` the stream stops after the last subtask of the last top-level task, as if
    the model were still writing that task (a training window that ends inside a block).
    """
    w = _Writer(prompt, k)
    w.write('{"reasoning": [')
    top = _ListState()
    for j, task in enumerate(doc["reasoning"]):
        if j:
            top.finished[-1][1] = w.offset + 2
            w.write(", ")
        last = j == len(doc["reasoning"]) - 1
        w.task(task, top, open_end=open_end and last)
        if open_end and last:
            return Stream(w.segments, w.prunes)
    if "answer" in doc:
        w.write(f'], "answer": {json.dumps(doc["answer"], ensure_ascii=False)}}}')
    return Stream(w.segments, w.prunes)


def char_encoder(text: str) -> list[tuple[int, int, int]]:
    """One token per character (id = code point): the reference encoder for tests."""
    return [(ord(c), i, i + 1) for i, c in enumerate(text)]


def live_views(stream: Stream, encode: Encoder) -> list[View]:
    """Replay `stream`: one view at the start and one after each prune.

    Each segment is encoded on its own; a prune removes the tokens wholly inside its spans.
    A token that straddles a span edge breaks the runtime's token alignment and raises.
    """
    live: list[tuple[int, int, int]] = []  # (token id, start, end) kept, in order
    views = [View([])]
    prune_at = dict(stream.prunes)
    offset = 0
    for n, seg in enumerate(stream.segments, start=1):
        tokens = [(t, offset + s, offset + e) for t, s, e in encode(seg.text)]
        offset += len(seg.text)
        live.extend(tokens)
        views[-1].new.extend((t, seg.source) for t, _, _ in tokens)
        if seg.source == "prompt":
            views[-1] = View([t for t, _, _ in live])
        if n in prune_at:
            live = _cut(live, prune_at[n])
            views.append(View([t for t, _, _ in live]))
    if not views[-1].new:
        views.pop()
    return views


class TokenAlignmentError(ValueError):
    """A pruned span starts or ends inside a token."""


def _cut(live: list[tuple[int, int, int]], spans: list[tuple[int, int]]):
    kept = []
    for tok in live:
        _, s, e = tok
        inside = False
        for a, b in spans:
            if a <= s and e <= b:
                inside = True
                break
            if s < a < e or s < b < e:
                raise TokenAlignmentError(f"token [{s}, {e}) straddles pruned span [{a}, {b})")
        if not inside:
            kept.append(tok)
    return kept


def view_texts(stream: Stream) -> list[tuple[str, str]]:
    """(context text, new text) for each view, by the character encoder."""
    out = []
    for v in live_views(stream, char_encoder):
        out.append(("".join(map(chr, v.context)), "".join(chr(t) for t, _ in v.new)))
    return out
