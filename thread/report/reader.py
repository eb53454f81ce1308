"""Read a run's JSON-lines trace back into tokens, prunes, tool calls and parser events.

The reader is the inverse of `thread/trace.py` and follows docs/design.md ("Traces"). It is
tolerant where a crash leaves marks (a cut last line, no `end` line) and strict elsewhere: a
malformed line in the middle raises `TraceError` naming the file and line. It renders nothing.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

KNOWN_KINDS = {"start", "prefill", "token", "drop", "event", "tool", "prune", "error", "end"}


class TraceError(ValueError):
    """A trace file that cannot be read: the message names the file, the line and the fault."""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One transcript entry; `source` is prompt | model | tool | forced | cut."""

    index: int
    id: int
    text: str
    step: int
    source: str


@dataclass(frozen=True)
class PruneRecord:
    """One `prune` line; `spans` are half-open transcript index ranges freed at `step`."""

    number: int  # 0-based order among the trace's prunes
    step: int
    rule: str
    mode: str
    node: str
    spans: list[tuple[int, int]]
    freed: int
    live_before: int | None
    live_after: int | None
    reencoded: int | None
    seconds: float | None

    @property
    def label(self) -> str:
        target = f"task {self.node}" if self.node else (self.rule or "document")
        return f"{target} at step {self.step}"


@dataclass(frozen=True)
class ToolRecord:
    step: int
    node: str | None
    name: str
    arguments: Any
    result: Any
    error: str | None
    seconds: float | None


@dataclass(frozen=True)
class EventRecord:
    """A parser event as written by `Event.to_json()`, with the step it was decided in."""

    step: int
    kind: str
    path: str
    offset: int | None
    field: str | None
    span: tuple[int, int] | None
    value: Any
    message: str | None


@dataclass
class Trace:
    """Everything one trace file holds, in the order written."""

    path: Path
    start: dict[str, Any]
    tokens: list[TokenRecord]
    num_prompt: int
    events: list[EventRecord]
    tools: list[ToolRecord]
    prunes: list[PruneRecord]
    errors: list[dict[str, Any]]
    end: dict[str, Any] | None
    live_points: list[tuple[int, int]]  # (step, live) after every line that reports a live size
    is_truncated: bool  # the last line was cut off mid-write
    token_steps: list[int] = field(init=False, repr=False)
    pruned_by: list[int] = field(init=False, repr=False)  # per token: prune number, or -1

    def __post_init__(self) -> None:
        self.token_steps = [t.step for t in self.tokens]
        self.pruned_by = [-1] * len(self.tokens)
        for prune in self.prunes:
            for a, b in prune.spans:
                for i in range(max(a, 0), min(b, len(self.tokens))):
                    if self.pruned_by[i] == -1:
                        self.pruned_by[i] = prune.number

    @property
    def last_step(self) -> int:
        steps = [self.token_steps[-1] if self.tokens else 0, *(p.step for p in self.prunes[-1:])]
        if self.end is not None:
            steps.append(int(self.end.get("step", 0)))
        return max(steps)

    @property
    def status(self) -> str:
        """The `end` line's status, or `incomplete` for a run that never wrote one."""
        return str(self.end.get("status", "unknown")) if self.end else "incomplete"

    def check_step(self, step: int) -> int:
        if not 0 <= step <= self.last_step:
            raise TraceError(f"{self.path}: step {step} is outside the trace's steps 0..{self.last_step}")
        return step

    def live_at(self, step: int) -> LiveContext:
        """The live context at `step`: tokens with step <= K, less those pruned at steps <= K."""
        from thread.report.live import live_context

        return live_context(self, self.check_step(step))

    def live_series(self) -> list[tuple[int, int]]:
        """(step, live size) at the end of every step that changed it, in step order."""
        series: dict[int, int] = {}
        for step, live in self.live_points:
            series[step] = live
        return sorted(series.items())

    def tree(self) -> Any:
        """The node tree rebuilt from the parser events, with what pruned each node (nodes.py)."""
        from thread.report.nodes import build_tree

        return build_tree(self)

    def ledger(self) -> tuple[dict[str, Any], bool]:
        """(ledger, is_partial): the `end` line's ledger, else one recomputed from the lines."""
        if self.end is not None and isinstance(self.end.get("ledger"), dict):
            return self.end["ledger"], False
        return recompute_ledger(self), True


def recompute_ledger(trace: Trace) -> dict[str, Any]:
    """The counts a crashed run's trace still allows, named as in `thread/ledger.py`."""
    sources = [t.source for t in trace.tokens[trace.num_prompt :]]
    lives = [live for _, live in trace.live_points]
    return {
        "prefilled": trace.num_prompt,
        "decoded": sources.count("model") + sources.count("cut"),
        "reencoded": sum(p.reencoded or 0 for p in trace.prunes),
        "tool_tokens": sources.count("tool"),
        "pruned": sum(p.freed for p in trace.prunes),
        "peak_live": max(lives, default=0),
        "final_live": lives[-1] if lives else 0,
        "steps": trace.last_step,
        "tool_calls": len(trace.tools),
        "prunes": len(trace.prunes),
    }


def ledger_rows(ledger: dict[str, Any]) -> list[tuple[str, Any]]:
    """Ledger entries as (name, value) rows: small dicts flattened with dotted names, and a
    per-item map (every value a dict, such as the cost of each subtask) counted, not listed."""
    rows: list[tuple[str, Any]] = []
    for key, value in ledger.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            rows.append((key, f"{len(value)} entries"))
        elif isinstance(value, dict):
            rows += ledger_rows({f"{key}.{k}": v for k, v in value.items()})
        else:
            rows.append((key, value))
    return rows


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read a trace file; a cut last line (a crashed run) is dropped with a warning."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise TraceError(f"cannot read trace {path}: {error.strerror}") from error
    lines = raw.split("\n")
    is_truncated = False
    if lines and lines[-1] == "":
        lines.pop()
    builder = _Builder(path)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                logger.info("%s:%d: last line is cut off (a crashed run); ignoring it", path, number)
                is_truncated = True
                break
            raise TraceError(f"{path}:{number}: not a JSON line ({error.msg} at column {error.colno})") from None
        builder.add(record, number)
    return builder.finish(is_truncated)


class _Builder:
    """Collects lines into a Trace, checking each against the contract as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start: dict[str, Any] = {}
        self.tokens: list[TokenRecord] = []
        self.num_prompt = 0
        self.events: list[EventRecord] = []
        self.tools: list[ToolRecord] = []
        self.prunes: list[PruneRecord] = []
        self.errors: list[dict[str, Any]] = []
        self.end: dict[str, Any] | None = None
        self.live_points: list[tuple[int, int]] = []
        self.number = 0

    def need(self, record: dict[str, Any], key: str) -> Any:
        if key not in record:
            kind = record.get("kind")
            raise TraceError(f"{self.path}:{self.number}: {kind!r} line has no {key!r} key")
        return record[key]

    def add(self, record: Any, number: int) -> None:
        self.number = number
        if not isinstance(record, dict):
            raise TraceError(f"{self.path}:{number}: expected a JSON object, got {type(record).__name__}")
        kind = self.need(record, "kind")
        step = self.need(record, "step")
        if kind not in KNOWN_KINDS:
            logger.debug("%s:%d: skipping unknown line kind %r", self.path, number, kind)
            return
        getattr(self, f"_on_{kind}")(record, int(step))
        if "live" in record:
            self.live_points.append((int(step), int(record["live"])))

    def _on_start(self, record: dict[str, Any], step: int) -> None:
        self.start = {k: v for k, v in record.items() if k not in ("kind", "step", "t")}

    def _on_prefill(self, record: dict[str, Any], step: int) -> None:
        ids, texts = self.need(record, "ids"), self.need(record, "texts")
        if len(ids) != len(texts) or self.tokens:
            raise TraceError(f"{self.path}:{self.number}: prefill must come first with one text per id ({len(ids)=} {len(texts)=})")
        self.tokens = [TokenRecord(i, int(t), str(x), step, "prompt") for i, (t, x) in enumerate(zip(ids, texts))]
        self.num_prompt = len(self.tokens)

    def _on_token(self, record: dict[str, Any], step: int) -> None:
        index = int(record.get("index", len(self.tokens)))
        if index != len(self.tokens):
            raise TraceError(f"{self.path}:{self.number}: token index {index}, expected {len(self.tokens)} (the next transcript index)")
        text = str(self.need(record, "text"))
        source = str(record.get("source", "model"))
        self.tokens.append(TokenRecord(index, int(self.need(record, "id")), text, step, source))

    def _on_drop(self, record: dict[str, Any], step: int) -> None:
        index = int(self.need(record, "index"))
        if index != len(self.tokens) - 1 or index < self.num_prompt:
            raise TraceError(f"{self.path}:{self.number}: drop of index {index}, but the last document token is {len(self.tokens) - 1}")
        self.tokens.pop()

    def _on_event(self, record: dict[str, Any], step: int) -> None:
        event = self.need(record, "event")
        if not isinstance(event, dict) or "kind" not in event:
            raise TraceError(f"{self.path}:{self.number}: 'event' must be an object with a 'kind'")
        span = event.get("span")
        self.events.append(
            EventRecord(
                step=step, kind=str(event["kind"]), path=str(event.get("path") or ""),
                offset=event.get("offset"), field=event.get("field"),
                span=(int(span[0]), int(span[1])) if span else None,
                value=event.get("value"), message=event.get("message"),
            )
        )

    def _on_tool(self, record: dict[str, Any], step: int) -> None:
        self.tools.append(
            ToolRecord(
                step=step, node=record.get("node"), name=str(self.need(record, "name")),
                arguments=record.get("arguments"), result=record.get("result"),
                error=record.get("error"), seconds=record.get("seconds"),
            )
        )

    def _on_prune(self, record: dict[str, Any], step: int) -> None:
        spans = self.need(record, "spans")
        try:
            spans = [(int(a), int(b)) for a, b in spans]
        except (TypeError, ValueError):
            raise TraceError(f"{self.path}:{self.number}: prune 'spans' must be [start, end) pairs, got {spans!r}") from None
        prune = PruneRecord(
            number=len(self.prunes), step=step, rule=str(record.get("rule", "")),
            mode=str(record.get("mode", "")), node=str(record.get("node") or ""), spans=spans,
            freed=int(record.get("freed", sum(b - a for a, b in spans))),
            live_before=record.get("live_before"), live_after=record.get("live_after"),
            reencoded=record.get("reencoded"), seconds=record.get("seconds"),
        )
        self.prunes.append(prune)
        if prune.live_after is not None:
            self.live_points.append((step, int(prune.live_after)))

    def _on_error(self, record: dict[str, Any], step: int) -> None:
        self.errors.append({"step": step, "message": record.get("message"), "where": record.get("where")})

    def _on_end(self, record: dict[str, Any], step: int) -> None:
        self.end = {k: v for k, v in record.items() if k not in ("kind", "t")}

    def finish(self, is_truncated: bool) -> Trace:
        if not self.tokens and not self.start:
            raise TraceError(f"{self.path}: no 'start', 'prefill' or 'token' line: not a thread trace")
        return Trace(
            path=self.path, start=self.start, tokens=self.tokens, num_prompt=self.num_prompt,
            events=self.events, tools=self.tools, prunes=self.prunes, errors=self.errors,
            end=self.end, live_points=self.live_points, is_truncated=is_truncated,
        )


def document_starts(trace: Trace) -> list[int]:
    """Character offset of each document token (the parser's offsets count from the first one)."""
    starts, offset = [], 0
    for token in trace.tokens[trace.num_prompt :]:
        starts.append(offset)
        offset += len(token.text)
    return starts


def tokens_within(trace: Trace, starts: list[int], span: tuple[int, int]) -> range:
    """Transcript indices of the document tokens wholly inside the character span (a range)."""
    a, b = span
    first = bisect.bisect_left(starts, a)
    last = first
    texts = trace.tokens
    while last < len(starts) and starts[last] + len(texts[trace.num_prompt + last].text) <= b:
        last += 1
    return range(trace.num_prompt + first, trace.num_prompt + last)
