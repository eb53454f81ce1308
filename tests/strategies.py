"""Hypothesis strategies for Thread-2 documents, their serialisations and chunkings.

Other test files reuse these: `documents()` gives a random Thread-2 document (a dict), `texts()`
serialises one with random JSON whitespace and escapes, `chunkings()` cuts a text (str or its
UTF-8 bytes) into random pieces, `pencil_texts()` gives nested PENCIL call/return texts.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

MAX_DEPTH = 6
TASK_FIELDS = ("title", "thought", "tooluse", "subtasks", "conclusion")

# Text heavy in characters that need escapes, non-ASCII and astral (surrogate-pair) characters.
tricky_chars = st.sampled_from(list('"\\/\b\f\n\r\t\x00\x1f\x7f') + ["é", "ß", "中", "🙂", "𝄞", "\u2028", "ǅ"])
strings = st.lists(st.one_of(tricky_chars, st.characters(codec="utf-8")), max_size=12).map("".join)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)),
    max_leaves=12,
)
json_objects = st.dictionaries(strings, json_values, max_size=4)


@st.composite
def tooluses(draw) -> dict:
    use = {"tool_name": draw(strings), "parameters": draw(json_objects)}
    if draw(st.booleans()):
        use["tool_result"] = draw(json_values)
    return use


def tasks(depth: int = MAX_DEPTH) -> st.SearchStrategy[dict]:
    """A task with a random subset of its fields, in order; subtasks nest `depth` levels more."""

    @st.composite
    def build(draw) -> dict:
        task = {}
        for name in TASK_FIELDS:
            if not draw(st.booleans()):
                continue
            if name == "tooluse":
                task[name] = draw(tooluses())
            elif name == "subtasks":
                task[name] = draw(st.lists(tasks(depth - 1), max_size=3)) if depth > 1 else []
            else:
                task[name] = draw(strings)
        return task

    return build()


def documents(depth: int = MAX_DEPTH) -> st.SearchStrategy[dict]:
    """A whole document: "reasoning" first, then "answer"."""
    return st.builds(lambda r, a: {"reasoning": r, "answer": a}, st.lists(tasks(depth), max_size=3), strings)


WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def texts(draw, doc: dict | None = None) -> str:
    """`doc` (or a random document) as JSON with random whitespace and random string escapes."""
    doc = draw(documents()) if doc is None else doc
    return _dump(draw, doc)


def _dump(draw, value) -> str:
    ws = lambda: draw(WHITESPACE)  # noqa: E731
    if isinstance(value, dict):
        items = [f"{ws()}{_string(draw, k)}{ws()}:{ws()}{_dump(draw, v)}{ws()}" for k, v in value.items()]
        return "{" + (",".join(items) if items else ws()) + "}"
    if isinstance(value, list):
        items = [f"{ws()}{_dump(draw, v)}{ws()}" for v in value]
        return "[" + (",".join(items) if items else ws()) + "]"
    if isinstance(value, str):
        return _string(draw, value)
    return json.dumps(value)


def _string(draw, text: str) -> str:
    """A JSON string for `text`, each character written plainly, short-escaped or \\u-escaped."""
    out = []
    for ch in text:
        plain = json.dumps(ch, ensure_ascii=False)[1:-1]
        ways = [plain, json.dumps(ch)[1:-1]]
        if ch == "/":
            ways.append("\\/")
        out.append(draw(st.sampled_from(ways)))
    return '"' + "".join(out) + '"'


@st.composite
def chunkings(draw, text: str) -> list[str | bytes]:
    """`text` cut at random places, as str pieces or as UTF-8 byte pieces (which may split a
    multi-byte character)."""
    data = text.encode("utf-8") if draw(st.booleans()) else text
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=min(len(data), 40))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


@st.composite
def pencil_texts(draw, depth: int = 4) -> str:
    """Nested PENCIL text: calls and plain text, with stray "[" and marker prefixes such as
    "[CALL" that are not markers (plain text has no "]", so no marker forms across pieces)."""
    plain = st.text(alphabet="ab xy[CALSEPRTUN\xe9\n", max_size=6)

    def part(d: int):
        if d > 0 and draw(st.booleans()):
            return f"[CALL]{seq(d - 1)}[SEP]{seq(d - 1)}[RETURN]"
        return draw(plain)

    def seq(d: int) -> str:
        return "".join(part(d) for _ in range(draw(st.integers(0, 3))))

    return seq(depth)
