"""Rebuild the node tree from a trace's parser events, and say which prune removed what.

Nodes come from `node_open` / `field_end` / `tool_ready` / `node_close` events; tool results
from `tool` lines. A node (or one of its fields) counts as pruned once every document token
wholly inside its character span has been pruned; the prune that took the last of them is named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from thread.report.reader import PruneRecord, Trace, document_starts, tokens_within

logger = logging.getLogger(__name__)


@dataclass
class ToolCall:
    name: str
    arguments: Any
    result: Any = None
    error: str | None = None
    step: int | None = None


@dataclass
class TraceNode:
    """One node of the run's tree; `path` "" is the document itself."""

    path: str
    fields: dict[str, Any] = field(default_factory=dict)  # decoded values at field_end, in order
    field_spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    open_offset: int | None = None
    span: tuple[int, int] | None = None
    opened_at: int | None = None  # step
    closed_at: int | None = None  # step
    tool: ToolCall | None = None
    children: list[TraceNode] = field(default_factory=list)
    pruned: PruneRecord | None = None  # the prune that took the node's last live token
    pruned_fields: dict[str, PruneRecord] = field(default_factory=dict)
    named_by: list[PruneRecord] = field(default_factory=list)  # prunes whose `node` is this one
    error: str | None = None

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    @property
    def label(self) -> str:
        """The node's title, else its thought, else "" (text only; callers shorten it)."""
        for name in ("title", "thought"):
            if isinstance(self.fields.get(name), str):
                return self.fields[name]
        return ""

    def walk(self) -> list[TraceNode]:
        nodes = [self]
        for child in self.children:
            nodes += child.walk()
        return nodes


def _parent_path(path: str) -> str:
    return path.rpartition(".")[0] if "." in path else ""


def build_tree(trace: Trace) -> TraceNode:
    """The document node, its tasks below it, tool calls and prunes attached."""
    root = TraceNode(path="", open_offset=0, opened_at=0)
    nodes = {"": root}

    def node_at(path: str) -> TraceNode:
        if path not in nodes:
            nodes[path] = TraceNode(path=path)
            node_at(_parent_path(path)).children.append(nodes[path])
        return nodes[path]

    # 1) events, in order
    tool_paths = []
    for event in trace.events:
        node = node_at(event.path)
        if event.kind == "node_open":
            node.open_offset, node.opened_at = event.offset, event.step
        elif event.kind == "field_end" and event.field:
            node.fields[event.field] = event.value
            if event.span:
                node.field_spans[event.field] = event.span
        elif event.kind == "tool_ready":
            value = event.value if isinstance(event.value, dict) else {}
            node.tool = ToolCall(str(value.get("name")), value.get("parameters"), step=event.step)
            tool_paths.append(event.path)
        elif event.kind in ("node_close", "done"):
            node.closed_at = event.step
            node.span = event.span or node.span
        elif event.kind == "error":
            node.error = event.message or "parser error"

    # 2) tool results; lines without `node` pair with tool_ready events in order
    for n, tool in enumerate(trace.tools):
        path = tool.node if tool.node is not None else (tool_paths[n] if n < len(tool_paths) else None)
        if path is None:
            logger.warning("%s: tool call %r at step %d has no node", trace.path, tool.name, tool.step)
            continue
        node = node_at(path)
        node.tool = node.tool or ToolCall(tool.name, tool.arguments)
        node.tool.result, node.tool.error, node.tool.step = tool.result, tool.error, tool.step

    _attach_prunes(trace, root, nodes)
    return root


def _attach_prunes(trace: Trace, root: TraceNode, nodes: dict[str, TraceNode]) -> None:
    for prune in trace.prunes:
        if prune.node in nodes:
            nodes[prune.node].named_by.append(prune)
    starts = document_starts(trace)
    num_chars = starts[-1] + len(trace.tokens[-1].text) if starts else 0
    ends = [s[1] for n in nodes.values() for s in [n.span, *n.field_spans.values()] if s]
    if max(ends, default=0) > num_chars:
        logger.warning(
            "%s: event spans run past the document (%d chars); prunes shown by node name only",
            trace.path, num_chars,
        )
        return
    for node in nodes.values():
        span = node.span
        if span is None and node.open_offset is not None:
            span = (node.open_offset, num_chars)  # still open when the trace ended
        if span is not None and node is not root:
            node.pruned = _last_prune(trace, tokens_within(trace, starts, span))
        for name, field_span in node.field_spans.items():
            prune = _last_prune(trace, tokens_within(trace, starts, field_span))
            if prune is not None:
                node.pruned_fields[name] = prune


def _last_prune(trace: Trace, indices: range) -> PruneRecord | None:
    """The prune after which none of `indices` was live, or None if some never were pruned."""
    numbers = [trace.pruned_by[i] for i in indices]
    if not numbers or min(numbers) < 0:
        return None
    return max((trace.prunes[n] for n in numbers), key=lambda p: (p.step, p.number))
