"""The tree the parser builds: paths, spans, serialisation, prune spans, text buffer."""

from __future__ import annotations

import json

import pytest

from thread.parser import parse
from thread.tree import TextBuffer

DOC = (
    '{"reasoning": [\n'
    '  {"thought": "a", "subtasks": [{"thought": "x"}, {"conclusion": "y"}], "conclusion": "b"},\n'
    '  {"title": "second", "tooluse": {"tool_name": "t", "parameters": {"k": 1}, "tool_result": "r"}}\n'
    '], "answer": "done"}'
)


def cut(text: str, span: tuple[int, int]) -> str:
    return text[: span[0]] + text[span[1] :]


def test_paths_follow_sibling_indices():
    tree = parse(DOC).tree
    assert [n.path for n in tree.nodes()] == ["", "0", "0.0", "0.1", "1"]
    assert tree.node("0.1").parent is tree.node("0")
    assert [c.path for c in tree.node("0").children] == ["0.0", "0.1"]
    assert all(n.closed for n in tree.nodes())
    with pytest.raises(KeyError, match="0.7"):
        tree.node("0.7")


def test_node_span_is_first_to_last_character():
    tree = parse(DOC).tree
    node = tree.node("0.1")
    assert DOC[node.span[0] : node.span[1]] == '{"conclusion": "y"}'


def test_nested_tool_fields_stay_inside_tooluse_in_json():
    tree = parse(DOC).tree
    fields = tree.node("1").fields
    assert fields["parameters"].parent == "tooluse" and fields["tooluse"].parent is None
    assert tree.to_json() == json.loads(DOC)


def test_prune_span_takes_the_following_separator():
    tree = parse(DOC).tree
    span = tree.prune_span(tree.node("0").fields["subtasks"])
    assert DOC[span[0] : span[1]] == '"subtasks": [{"thought": "x"}, {"conclusion": "y"}], '
    assert json.loads(cut(DOC, span))["reasoning"][0] == {"thought": "a", "conclusion": "b"}


def test_prune_span_of_a_last_item_takes_the_preceding_separator():
    tree = parse(DOC).tree
    span = tree.prune_span(tree.node("0.1"))
    assert DOC[span[0] : span[1]] == ', {"conclusion": "y"}'
    span = tree.prune_span(tree.node("1"))
    assert DOC[span[0] : span[1]] == ',\n  {"title": "second", "tooluse": {"tool_name": "t", "parameters": {"k": 1}, "tool_result": "r"}}'
    assert json.loads(cut(DOC, span))["reasoning"] == json.loads(DOC)["reasoning"][:1]


@pytest.mark.parametrize("path", ["0", "0.0", "0.1", "1"])
def test_cutting_any_prune_span_leaves_valid_json(path):
    tree = parse(DOC).tree
    assert json.loads(cut(DOC, tree.prune_span(tree.node(path))))


def test_prune_span_of_an_open_item_is_refused():
    tree = parse(DOC[:40]).tree
    with pytest.raises(ValueError, match="still open"):
        tree.prune_span(tree.node("0"))


def test_outline_lists_kinds_spans_and_values():
    outline = parse(DOC).tree.outline()
    first = outline["children"][0]
    assert first["kind"] == "task" and first["fields"]["subtasks"]["value"] == ["0.0", "0.1"]
    assert first["fields"]["thought"]["value"] == "a"
    json.dumps(outline)


def test_reduced_text_needs_a_declared_reduction():
    with pytest.raises(ValueError, match="no \\[reduce\\]"):
        parse(DOC).tree.reduced_text()


def test_text_buffer_slices_across_pieces():
    buf, text = TextBuffer(), "".join(chr(0x61 + i % 26) + "é" for i in range(700))
    for i in range(0, len(text), 3):
        buf.append(text[i : i + 3])
        if i % 90 == 0:
            assert buf.slice(i // 2, i + 3) == text[i // 2 : i + 3]
    assert len(buf) == len(text) and str(buf) == text
    assert buf.slice(5, 1000) == text[5:1000] and buf.slice(10, 10) == ""
