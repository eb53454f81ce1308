"""The streaming parser on Thread-2: grammar tables, events, chunking, errors, truncation."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import strategies
from thread.formats import ParseError, ThreadFormatError
from thread.parser import MAX_NESTING, Event, Parser, parse

TASK = '{"title": "t", "thought": "think", "tooluse": {"tool_name": "calc", "parameters": {"expr": "1+2"}, "tool_result": 3}, "subtasks": [{"thought": "s"}], "conclusion": "c"}'

VALID = [
    ("empty reasoning", '{"reasoning": [], "answer": ""}'),
    ("empty task", '{"reasoning": [{}], "answer": "a"}'),
    ("every field", '{"reasoning": [' + TASK + '], "answer": "3"}'),
    ("only conclusion", '{"reasoning": [{"conclusion": "c"}], "answer": "a"}'),
    ("tooluse without result", '{"reasoning": [{"tooluse": {"tool_name": "t", "parameters": {}}}], "answer": "a"}'),
    ("whitespace everywhere", ' \n{ "reasoning" :\t[ { "thought" : "x" } ] ,\r\n "answer" : "y" }\n '),
    ("nested json", '{"reasoning": [{"tooluse": {"tool_name": "q", "parameters": {"a": [1, -2.5e-3, true, false, null, {"b": []}], "title": "not a key"}, "tool_result": [[{}], "x"]}}], "answer": "a"}'),
    ("deep subtasks", '{"reasoning": [{"subtasks": [{"subtasks": [{"subtasks": [{"thought": "deep"}]}]}]}], "answer": "a"}'),
    ("non-ascii", '{"reasoning": [{"thought": "中文 é 🙂"}], "answer": "naïve"}'),
]

INVALID = [
    ("field out of order", '{"reasoning": [{"thought": "a", "title": "b"}], "answer": "x"}', (1, 33), "expected"),
    ("unknown field", '{"reasoning": [{"plan": "a"}], "answer": "x"}', (1, 17), "unexpected '\"p'"),
    ("trailing comma", '{"reasoning": [{"thought": "a",}], "answer": "x"}', (1, 32), "unexpected '}'"),
    ("missing answer", '{"reasoning": []}', (1, 17), "expected ','"),
    ("raw newline in string", '{"reasoning": [{"thought": "a\nb"}], "answer": "x"}', (1, 30), "inside a string that starts at 1:28"),
    ("bad escape", '{"reasoning": [], "answer": "\\q"}', (1, 31), "inside a string"),
    ("short unicode escape", '{"reasoning": [], "answer": "\\u12"}', (1, 34), "inside a string"),
    ("text after the document", '{"reasoning": [], "answer": "x"} {', (1, 34), "expected end of input"),
    ("parameters not an object", '{"reasoning": [{"tooluse": {"tool_name": "t", "parameters": [1]}}], "answer": "x"}', (1, 61), "expected '{'"),
    ("second line", '{"reasoning": [\n  {"thought": 1}], "answer": "x"}', (2, 15), "expected a string"),
    ("bare word", '{"reasoning": [{"tooluse": {"tool_name": "t", "parameters": {"a": yes}}}], "answer": "x"}', (1, 67), "unexpected 'y'"),
]


def events_of(pieces) -> tuple[list[Event], Parser]:
    parser = Parser("thread2")
    events = [e for piece in pieces for e in parser.feed(piece)]
    return events + parser.close(), parser


@pytest.mark.parametrize("name, text", VALID, ids=[v[0] for v in VALID])
def test_valid_documents_round_trip(name, text):
    parser = parse(text)
    assert parser.error is None and parser.status == "done"
    assert parser.tree.complete
    assert parser.tree.to_json() == json.loads(text)


@pytest.mark.parametrize("name, text, where, words", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_documents_give_a_positioned_error(name, text, where, words):
    events, parser = events_of([text])
    error = parser.error
    assert isinstance(error, ParseError) and isinstance(error, ThreadFormatError)
    assert (error.line, error.column) == where, str(error)
    assert words in str(error)
    assert str(error).startswith(f"{where[0]}:{where[1]}: ")
    assert events[-1].kind == "error" and events[-1].message == str(error)
    assert parser.status == "error"
    assert parser.tree.complete == (name == "text after the document")
    assert parser.feed('"more"') == [] and parser.close() == []


def test_events_of_one_task_in_order():
    events, _ = events_of(['{"reasoning": [' + TASK + '], "answer": "3"}'])
    seen = [(e.kind, e.path, e.field) for e in events]
    assert seen == [
        ("field_start", "", "reasoning"),
        ("node_open", "0", None),
        *[(k, "0", f) for f in ("title", "thought") for k in ("field_start", "field_end")],
        ("field_start", "0", "tooluse"),
        ("field_start", "0", "tool_name"), ("field_end", "0", "tool_name"),
        ("field_start", "0", "parameters"), ("field_end", "0", "parameters"),
        ("tool_ready", "0", "parameters"),
        ("field_start", "0", "tool_result"), ("field_end", "0", "tool_result"),
        ("field_end", "0", "tooluse"),
        ("field_start", "0", "subtasks"),
        ("node_open", "0.0", None), ("field_start", "0.0", "thought"), ("field_end", "0.0", "thought"),
        ("node_close", "0.0", None),
        ("field_end", "0", "subtasks"),
        ("field_start", "0", "conclusion"), ("field_end", "0", "conclusion"),
        ("node_close", "0", None),
        ("field_end", "", "reasoning"),
        ("field_start", "", "answer"), ("field_end", "", "answer"),
        ("done", "", None),
    ]


def test_events_fire_on_their_deciding_character():
    text = '{"reasoning": [' + TASK + '], "answer": "3"}'
    parser = Parser()
    fired = {}
    for i, ch in enumerate(text):
        for e in parser.feed(ch):
            fired.setdefault((e.kind, e.path, e.field), i)
    params_end = text.index('"tool_result"') - 3  # the "}" closing the parameters
    assert text[params_end] == "}"
    assert fired[("tool_ready", "0", "parameters")] == params_end
    assert fired[("node_open", "0", None)] == text.index("[{") + 1
    assert fired[("node_close", "0", None)] == text.index("}], \"answer\"")
    assert fired[("field_end", "", "answer")] == len(text) - 2
    assert fired[("done", "", None)] == len(text) - 1


def test_tool_ready_carries_name_and_parameters_before_the_result():
    head = '{"reasoning": [{"tooluse": {"tool_name": "lookup", "parameters": {"q": ["a", {"b": 1}]}'
    parser = Parser()
    events = parser.feed(head)
    ready = [e for e in events if e.kind == "tool_ready"]
    assert ready and ready[0].value == {"name": "lookup", "parameters": {"q": ["a", {"b": 1}]}}
    assert ready[0].offset == len(head)
    assert "tool_result" not in parser.tree.node("0").fields


def test_spans_cover_their_text():
    text = '{"reasoning": [' + TASK + '], "answer": "3"}'
    parser = parse(text)
    node = parser.tree.node("0")
    assert text[node.span[0] : node.span[1]] == TASK
    thought = node.fields["thought"]
    assert text[slice(*thought.span)] == '"thought": "think"'
    assert text[slice(*thought.value_span)] == '"think"'
    assert text[slice(*node.fields["parameters"].value_span)] == '{"expr": "1+2"}'
    assert all(text[s:e] == text[s:e].strip() for _, s, e in parser.lexemes if _ != "WS")
    assert "".join(text[s:e] for _, s, e in parser.lexemes) == text


def test_truncated_stream_gives_an_incomplete_tree_without_error():
    text = '{"reasoning": [{"thought": "a", "subtasks": [{"conclusion": "half'
    events, parser = events_of([text])
    assert parser.error is None and parser.status == "incomplete"
    assert not parser.tree.complete
    assert parser.tree.to_json() == {"reasoning": [{"thought": "a", "subtasks": [{}]}]}
    assert all(e.kind != "error" for e in events)
    expected = f"1:{len(text) + 1}: unexpected end of input inside a string that starts at 1:{len(text) - 4}"
    assert parser.incomplete_message() == expected


def test_truncated_after_a_number_decides_it_at_close():
    text = '{"reasoning": [{"tooluse": {"tool_name": "t", "parameters": {}, "tool_result": 12'
    events, parser = events_of([text])
    assert parser.status == "incomplete"
    assert parser.tree.node("0").fields["tool_result"].value == 12


@pytest.mark.parametrize("cut", ["6.04e", "6.04e+", "-0.5E-", "1."])
def test_truncated_inside_an_exponent_is_incomplete_not_an_error(cut):
    head = '{"reasoning": [{"tooluse": {"tool_name": "t", "parameters": {"x": ['
    events, parser = events_of([head + cut])
    assert parser.error is None and parser.status == "incomplete"
    start = len(head) + 1
    expected = f"1:{len(head + cut) + 1}: unexpected end of input inside a number that starts at 1:{start}"
    assert parser.incomplete_message() == expected


def test_invalid_utf8_is_an_error_not_an_exception():
    events, parser = events_of([b'{"reasoning": [], "answer": "\xff"}'])
    assert parser.status == "error" and "UTF-8" in str(parser.error)
    assert (parser.error.line, parser.error.column) == (1, 30)


def test_invalid_utf8_after_a_split_character_is_placed_where_the_byte_is():
    # "é" split over two chunks, then a stray continuation byte at the start of line 2
    events, parser = events_of([b'{"reasoning": [{"thought": "\xc3', b'\xa9",\n\x80'])
    assert str(parser.error).startswith("2:1: invalid UTF-8 byte 0x80")
    text = parser.tree.text
    assert text.slice(0, len(text)) == '{"reasoning": [{"thought": "\u00e9",\n'


# JSON strings: every escape accepted and decoded as json does, the rest rejected.
STRING_CASES = [
    (r'"\""', '"'), (r'"\\"', "\\"), (r'"\/"', "/"), (r'"\b"', "\b"), (r'"\f"', "\f"),
    (r'"\n"', "\n"), (r'"\r"', "\r"), (r'"\t"', "\t"), (r'"\u0041"', "A"), (r'"\u00e9"', "é"),
    (r'"\uD83D\uDE42"', "🙂"), (r'"\u0000"', "\x00"), ('"é中🙂"', "é中🙂"), ('"\x7f"', "\x7f"),
    (r'"a\\\"b"', 'a\\"b'), ('""', ""), (r'"\ud800"', "\ud800"),
]
STRING_REJECTS = ['"\x00"', '"\x1f"', '"\n"', '"\t"', r'"\x41"', r'"\u00g0"', r'"\U0041"', r'"\a"', "'a'"]


@pytest.mark.parametrize("literal, value", STRING_CASES)
def test_json_string_escapes_decode_like_json(literal, value):
    parser = parse('{"reasoning": [], "answer": ' + literal + "}")
    assert parser.error is None, parser.error
    assert parser.tree.to_json()["answer"] == value == json.loads(literal)


@pytest.mark.parametrize("literal", STRING_REJECTS)
def test_json_string_rejects(literal):
    parser = parse('{"reasoning": [], "answer": ' + literal + "}")
    assert parser.status == "error"
    with pytest.raises(ValueError):
        json.loads(literal)


# Property: any document, any whitespace and escapes, any chunking: same tree, same events.
@given(st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_streaming_in_any_chunks_matches_one_shot(data):
    doc = data.draw(strategies.documents())
    text = data.draw(strategies.texts(doc))
    whole, parser = events_of([text])
    assert parser.error is None, parser.error
    assert parser.tree.to_json() == doc == json.loads(text)
    pieces = data.draw(strategies.chunkings(text))
    streamed, parser2 = events_of(pieces)
    assert streamed == whole
    assert parser2.tree.to_json() == doc
    assert parser2.lexemes == parser.lexemes


@given(st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_every_prefix_parses_without_error(data):
    text = data.draw(strategies.texts(data.draw(strategies.documents(depth=3))))
    cut = data.draw(st.integers(0, len(text)))
    events, parser = events_of([text[:cut]])
    assert parser.error is None, parser.error
    assert parser.status == ("done" if parser.tree.complete else "incomplete")
    assert [e.kind for e in events].count("node_open") >= [e.kind for e in events].count("node_close")


def test_nesting_past_the_limit_is_a_parse_error_where_it_happens():
    deep = MAX_NESTING + 1
    text = '{"reasoning": [' + '{"thought": "a", "subtasks": [' * deep + "]}" * deep + '], "answer": "1"}'
    parser = parse(text)
    assert parser.status == "error" and "nodes nested deeper than 256" in str(parser.error)
    assert parser.error.offset == len('{"reasoning": [') + len('{"thought": "a", "subtasks": [') * MAX_NESTING
    ok = '{"reasoning": [' + '{"thought": "a", "subtasks": [' * MAX_NESTING + "]}" * MAX_NESTING + '], "answer": "1"}'
    assert json.dumps(parse(ok).tree.to_json()) == json.dumps(json.loads(ok))
