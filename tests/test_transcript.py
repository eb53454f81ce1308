"""Tokens and characters: the detokenizer never splits a character, and a character span maps to
exactly the tokens wholly inside it (a token straddling an edge stays live)."""

from __future__ import annotations

from thread.transcript import Detokenizer, Transcript


def test_a_span_maps_to_the_tokens_wholly_inside_it():
    t = Transcript()
    t.add_prompt([1, 2], ["sys", "\n"])
    for piece in ['{"a": ', '"x"', "},", ' "b', '": 1', "}"]:
        t.add(0, piece, "model", 1)
    text = '{"a": "x"}, "b": 1}'
    span = (text.index('"x"'), text.index("}") + 1)  # `"x"}` : the `},` token straddles the end

    assert t.tokens_within(*span) == [3]
    assert t.tokens_within(0, len(text)) == [2, 3, 4, 5, 6, 7]
    assert t.tokens_within(text.index(","), text.index("1")) == [5]  # only ` "b` lies wholly inside


def test_a_zero_width_token_belongs_with_the_character_it_starts():
    t = Transcript()
    for piece in ["a", "", "é", "b"]:  # the empty token is the first byte of é
        t.add(0, piece, "model", 1)
    assert t.tokens_within(1, 2) == [1, 2]
    assert t.tokens_within(2, 3) == [3]


def test_detokenizer_holds_back_a_split_multibyte_character(smollm2_tokenizer):
    text = 'thought: "naïve café — 日本語 ✓"'
    ids = smollm2_tokenizer.encode(text, add_special_tokens=False)
    detok = Detokenizer(smollm2_tokenizer)
    pieces = [detok.push(i) for i in ids]

    assert "".join(pieces) == text
    assert "\ufffd" not in "".join(pieces)
    assert "" in pieces  # some token ended inside a character and waited for the next one


def test_detokenizer_pop_undoes_the_last_token(smollm2_tokenizer):
    ids = smollm2_tokenizer.encode('{"expression": "1+2"}, "x"', add_special_tokens=False)
    detok = Detokenizer(smollm2_tokenizer)
    first = [detok.push(i) for i in ids[:-1]]
    last = detok.push(ids[-1])
    detok.pop()
    assert detok.push(ids[-1]) == last
    assert "".join(first) + last == '{"expression": "1+2"}, "x"'
