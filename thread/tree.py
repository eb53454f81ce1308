"""The tree a parser builds while text streams in: nodes, their fields, spans and children.

Spans are half-open character ranges into the stream; an open node or field has end None.
The tree serialises back to its format's document, widens spans for pruning and applies a
declared reduction. It does not parse (thread.parser fills it) and never needs torch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from thread.formats import Format


class TextBuffer:
    """Append-only text with cheap slices, whatever the size of the appended pieces."""

    SEAL_AT = 256  # pieces kept loose before joining them into one block

    def __init__(self) -> None:
        self._blocks: list[str] = []
        self._block_starts: list[int] = []
        self._loose: list[str] = []
        self._loose_start = 0
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __str__(self) -> str:
        return self.slice(0, self._len)

    def append(self, text: str) -> None:
        if not text:
            return
        loose = self._loose
        loose.append(text)
        self._len += len(text)
        if len(loose) >= self.SEAL_AT:
            self._seal()

    def slice(self, start: int, end: int) -> str:
        """The characters in [start, end)."""
        self._seal()
        if start >= end:
            return ""
        first = bisect.bisect_right(self._block_starts, start) - 1
        last = bisect.bisect_left(self._block_starts, end)
        pieces = self._blocks[first:last]
        if len(pieces) == 1:
            base = self._block_starts[first]
            return pieces[0][start - base : end - base]
        return "".join(pieces)[start - self._block_starts[first] : end - self._block_starts[first]]

    def _seal(self) -> None:
        if self._loose:
            self._blocks.append("".join(self._loose))
            self._block_starts.append(self._loose_start)
            self._loose = []
            self._loose_start = self._len


@dataclass(eq=False)
class Field:
    name: str
    span: tuple[int, int | None]  # from its key (or first character) to its end
    value_span: tuple[int, int] | None = None
    value: object = None  # decoded at its end; for `children` fields, the child nodes
    parent: str | None = None  # the enclosing field of the same node (tooluse for parameters)
    closed: bool = False


@dataclass(eq=False)
class Node:
    path: str
    kind: str
    span: tuple[int, int | None]
    parent: Node | None = None
    fields: dict[str, Field] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    closed: bool = False

    def __repr__(self) -> str:
        return f"Node({self.path!r}, {self.kind!r}, span={self.span}, closed={self.closed})"

    def child_path(self, index: int) -> str:
        return f"{self.path}.{index}" if self.path else str(index)


class Tree:
    """The live tree of one stream. `root` is the document (path "")."""

    def __init__(self, fmt: Format, text: TextBuffer, lexemes: list[tuple[str, int, int]]) -> None:
        self.format = fmt
        self.text = text
        self.lexemes = lexemes  # (terminal, start, end), shared with the parser
        self.root = Node("", fmt.document, (0, None))
        self.complete = False
        self._decode = {f.name: f.decode for f in fmt.fields.values()}
        self._by_path: dict[str, Node] = {"": self.root}

    def add(self, node: Node) -> None:
        node.parent.children.append(node)
        self._by_path[node.path] = node

    def node(self, path: str) -> Node:
        """The node at `path` ("" is the document, "0.2" the third subtask of the first task)."""
        try:
            return self._by_path[path]
        except KeyError:
            raise KeyError(f"no node at path {path!r} (known: {len(self._by_path)} nodes)") from None

    def nodes(self) -> Iterator[Node]:
        """Every node in document order, the root first."""
        todo = [self.root]
        while todo:
            node = todo.pop()
            yield node
            todo.extend(reversed(node.children))

    # 1) the document in the format's own shape
    def to_json(self) -> dict:
        """The document; for a complete, valid stream it equals json.loads of the text."""
        return self._node_json(self.root)

    def _node_json(self, node: Node) -> dict:
        out = {}
        for f in node.fields.values():
            if f.parent is not None:
                continue
            if self._decode[f.name] == "children":
                out[f.name] = [self._node_json(c) for c in self.children_in(node, f)]
            elif f.closed:
                out[f.name] = f.value
        return out

    def children_in(self, node: Node, f: Field) -> list[Node]:
        """The children of `node` that opened inside field `f`."""
        end = f.span[1]
        return [c for c in node.children if c.span[0] >= f.span[0] and (end is None or c.span[0] < end)]

    def outline(self, node: Node | None = None) -> dict:
        """Any format's tree as plain data: kind, path, spans, field values, children."""
        node = node or self.root
        fields = {}
        for f in node.fields.values():
            value = [c.path for c in f.value] if self._decode[f.name] == "children" and f.closed else f.value
            fields[f.name] = {"span": list(f.span), "value_span": f.value_span and list(f.value_span), "value": value}
        return {
            "path": node.path,
            "kind": node.kind,
            "span": list(node.span),
            "closed": node.closed,
            "fields": fields,
            "children": [self.outline(c) for c in node.children],
        }

    # 2) pruning: a span that can be cut leaving well-formed text
    def prune_span(self, item: Node | Field) -> tuple[int, int]:
        """`item`'s span widened over one adjacent separator and the whitespace around it:
        the following separator if it has been lexed, else the preceding one."""
        start, end = item.span
        if end is None:
            raise ValueError(f"prune_span: {item!r} is still open; only finished items have a final span")
        sep = self.format.separator
        if sep is None:
            return start, end
        ignored, lx = self._ignored(), self.lexemes
        k = bisect.bisect_left(lx, end, key=lambda t: t[1])
        while k < len(lx) and lx[k][0] in ignored:
            k += 1
        if k < len(lx) and lx[k][0] == sep:
            cut = lx[k][2]
            for k in range(k + 1, len(lx)):
                if lx[k][0] not in ignored:
                    break
                cut = lx[k][2]
            return start, cut
        k = bisect.bisect_left(lx, start, key=lambda t: t[1]) - 1
        while k >= 0 and lx[k][0] in ignored:
            k -= 1
        if k >= 0 and lx[k][0] == sep:
            cut = lx[k][1]
            for k in range(k - 1, -1, -1):
                if lx[k][0] not in ignored:
                    break
                cut = lx[k][1]
            return cut, end
        return start, end

    def _ignored(self) -> frozenset[str]:
        return self.format.tables.ignored_names

    # 3) a declared reduction: finished nodes of one kind give way to one of their fields
    def reduced_text(self) -> str:
        """The text with every finished node of the declared kind replaced by its kept field's
        value (PENCIL: A [CALL] B [SEP] C [RETURN] D -> A C D), innermost first."""
        spec = self.format.reduce
        if spec is None:
            raise ValueError(f"format {self.format.name!r} declares no [reduce] section")
        pieces: list[str] = []
        self._reduce_into(pieces, self.root.children, 0, len(self.text))
        return "".join(pieces)

    def _reduce_into(self, pieces: list[str], nodes: list[Node], start: int, end: int) -> None:
        spec, pos = self.format.reduce, start
        for node in nodes:
            node_start, node_end = node.span[0], node.span[1] if node.span[1] is not None else end
            if node_start < pos or node_start >= end:
                continue
            pieces.append(self.text.slice(pos, node_start))
            kept = node.fields.get(spec.keep)
            if node.closed and node.kind == spec.node and kept is not None and kept.closed:
                value_start, value_end = kept.value_span
                inner = [c for c in node.children if value_start <= c.span[0] < value_end]
                self._reduce_into(pieces, inner, value_start, value_end)
            else:
                self._reduce_into(pieces, node.children, node_start, node_end)
            pos = node_end
        pieces.append(self.text.slice(pos, end))
