"""The streaming lexer alone: maximal munch, backtracking, when tokens are decided, failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thread.lexer import Lexer, LexerTables

# PENCIL-like markers against text, plus JSON-like pieces: enough to exercise every path.
NAMES = ["CALL", "SEP", "LBRACE", "NUMBER", "WORD", "TEXT"]
REGEXPS = [r"\[CALL\]", r"\[SEP\]", r"\{", r"[0-9]+", r"[a-z]+", r"[^\[0-9a-z{]+|\["]


def lex(pieces: list[str], allowed: tuple[str, ...] = tuple(NAMES)) -> tuple[list, Lexer]:
    tables = LexerTables(NAMES, REGEXPS, range(len(NAMES)))
    starts = tuple(tables.initial[NAMES.index(n)] for n in allowed)
    tokens = []

    def sink(term: int, start: int, end: int, decided: int):
        tokens.append((NAMES[term], start, end, decided))
        return starts

    lexer = Lexer(tables, sink, starts)
    for piece in pieces:
        lexer.feed(piece)
    return tokens, lexer


def test_literal_is_decided_on_its_last_character():
    tokens, lexer = lex(["{"])
    assert tokens == [("LBRACE", 0, 1, 1)]
    assert not lexer.in_token


def test_number_is_decided_by_the_character_after_it():
    tokens, lexer = lex(["12"])
    assert tokens == [] and lexer.in_token
    tokens, _ = lex(["12{"])
    assert tokens == [("NUMBER", 0, 2, 3), ("LBRACE", 2, 3, 3)]


def test_marker_prefix_backtracks_to_text():
    tokens, lexer = lex(["a[CAx"])
    assert [t[:3] for t in tokens] == [("WORD", 0, 1), ("TEXT", 1, 2), ("TEXT", 2, 4)]
    assert lexer.in_token  # "x" is a WORD still growing
    assert lexer.close()
    assert [t[:3] for t in tokens][-1] == ("WORD", 4, 5)


def test_marker_wins_over_text_when_complete():
    tokens, _ = lex(["[CALL]"])
    assert tokens == [("CALL", 0, 6, 6)]


@given(st.lists(st.sampled_from(["[", "[C", "[CALL]", "[SEP]", "ab", "12", " ", "{", "]", "é"]), max_size=12), st.data())
@settings(max_examples=100, deadline=None)
def test_chunking_does_not_change_tokens(parts, data):
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    bounds = [0, *cuts, len(text)]
    whole, lexer1 = lex([text])
    pieces, lexer2 = lex([text[a:b] for a, b in zip(bounds, bounds[1:])])
    lexer1.close()
    lexer2.close()
    assert pieces == whole
    assert "".join(text[s:e] for _, s, e, _ in whole) == text


def test_failure_names_the_character_and_the_token_start():
    tokens, lexer = lex(["ab{"], allowed=("WORD",))
    assert tokens == [("WORD", 0, 2, 3)]
    assert lexer.failure is not None
    assert (lexer.failure.offset, lexer.failure.char, lexer.failure.start) == (2, "{", 2)


def test_close_reports_an_unfinished_token():
    tables = LexerTables(["STRING"], [r'"[a-z]*"'], [0])
    lexer = Lexer(tables, lambda *a: (tables.initial[0],), (tables.initial[0],))
    lexer.feed('"abc')
    assert lexer.close() is False
    assert lexer.candidates() == (0,)


@pytest.mark.parametrize(
    "regexp, body",
    [(r"[^\x00-\x1f;]+", "abcé中 \\x"), (r"(?:[a-c]|\\x)+", "abc\\x")],
)
def test_run_skipping_agrees_with_stepping(regexp, body):
    tables = LexerTables(["T", "END"], [regexp, r";"], [0, 1])
    starts = (tables.initial[0], tables.initial[1])
    text = body * 20 + ";"
    for size in (1, 2, 7, len(text)):
        seen = []
        lexer = Lexer(tables, lambda t, s, e, d: seen.append((t, s, e)) or starts, starts)
        for i in range(0, len(text), size):
            lexer.feed(text[i : i + size])
        assert seen == [(0, 0, len(text) - 1), (1, len(text) - 1, len(text))], size
