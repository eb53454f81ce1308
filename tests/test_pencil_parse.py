"""PENCIL through the same parser: call tree, events, and the declared reduction."""

from __future__ import annotations

import json
import re

import strategies
from hypothesis import given, settings
from typer.testing import CliRunner

from thread.cli import app
from thread.parser import Parser, parse

INNERMOST = re.compile(r"\[CALL\]((?:(?!\[CALL\]|\[SEP\]|\[RETURN\]).)*)\[SEP\]((?:(?!\[CALL\]|\[SEP\]|\[RETURN\]).)*)\[RETURN\]", re.S)


def reference_reduce(text: str) -> str:
    """PENCIL's rule applied until nothing changes: [CALL] B [SEP] C [RETURN] -> C, innermost first."""
    while True:
        reduced = INNERMOST.sub(lambda m: m.group(2), text, count=1)
        if reduced == text:
            return text
        text = reduced


def test_paper_example_reduces_to_a_c_d():
    parser = parse("A [CALL] B [SEP] C [RETURN] D", "pencil")
    assert parser.status == "done"
    assert parser.tree.reduced_text() == "A  C  D"
    call = parser.tree.node("0")
    assert call.kind == "call" and call.fields["thought"].value == " B " and call.fields["answer"].value == " C "


def test_nested_calls_and_stray_brackets():
    text = "x [CALL] a [CALL] b [SEP] c [RETURN] [not a marker] [CAL [SEP] d [RETURN] y"
    parser = parse(text, "pencil")
    assert parser.error is None
    assert [n.path for n in parser.tree.nodes()] == ["", "0", "0.0"]
    assert parser.tree.reduced_text() == reference_reduce(text) == "x  d  y"


def test_events_of_a_call():
    parser = Parser("pencil")
    events = parser.feed("p[CALL]q[SEP]r[RETURN]") + parser.close()
    assert [(e.kind, e.path, e.field, e.offset) for e in events] == [
        ("node_open", "0", None, 7),
        ("field_start", "0", "thought", 7),
        ("field_end", "0", "thought", 13),
        ("field_start", "0", "answer", 13),
        ("field_end", "0", "answer", 22),
        ("node_close", "0", None, 22),
        ("done", "", None, 22),
    ]
    assert events[-2].span == (1, 22)


def test_unbalanced_markers_are_positioned_errors():
    parser = parse("a [SEP] b", "pencil")
    assert parser.status == "error" and str(parser.error).startswith("1:3: unexpected '[SEP]'")
    open_call = parse("a [CALL] b [SEP] c", "pencil")
    assert open_call.status == "incomplete" and open_call.tree.reduced_text() == "a [CALL] b [SEP] c"


@given(strategies.pencil_texts())
@settings(max_examples=80, deadline=None)
def test_reduction_after_every_character_matches_the_reference(text):
    parser = Parser("pencil")
    for i, ch in enumerate(text):
        parser.feed(ch)
        assert parser.error is None, parser.error
        # an undecided "[CA" is still plain text in both: only a finished [RETURN] reduces
        assert parser.tree.reduced_text() == reference_reduce(text[: i + 1]), text[: i + 1]
    parser.close()
    assert parser.status == "done"
    assert parser.tree.reduced_text() == reference_reduce(text)


def test_cli_prints_reduced_text_and_call_tree():
    result = CliRunner().invoke(app, ["parse", "--format", "pencil"], input="A [CALL] B [SEP] C [RETURN] D")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["reduced"] == "A  C  D"
    assert out["tree"]["children"][0]["kind"] == "call"
