"""Task families, gold documents and the live views under the `window` rule set."""

from __future__ import annotations

import json
import random

import pytest

from thread.tasks import TaskTextError, arith, chain, make, samples
from thread.tasks.views import (
    TokenAlignmentError,
    char_encoder,
    gold_stream,
    live_views,
    view_texts,
)


@pytest.mark.parametrize(
    "text, answer",
    [
        ("((17+25)*3)-(48-19)", "97"),
        ("17+25*3", "92"),
        ("10-3-2", "5"),
        ("2*3*4-5", "19"),
        (" ( 7 ) ", "7"),
        ("3-(4-10)", "9"),
        ("999*999", "998001"),
        ("((((1+2))))*(3)", "9"),
    ],
)
def test_arith_gold_answer_is_exact(text: str, answer: str) -> None:
    doc = arith.gold_document(text)
    assert doc["answer"] == answer
    end = len(arith.tape(text)) + 1  # the last step read the closing `)` past the last token
    assert doc["reasoning"][-1]["conclusion"] == f"{end}:{answer})"


@pytest.mark.parametrize("text", ["", "1+", "(1+2", "1/2", "1+-2", "a+1", "1)"])
def test_arith_rejects_bad_expressions_with_position(text: str) -> None:
    with pytest.raises(TaskTextError, match="expression"):
        arith.parse(text)


def _steps(tasks: list[dict], depth: int = 1):
    """(depth, thought, tool, argument, result, conclusion) of every step, in writing order."""
    for t in tasks:
        call = t["tooluse"]
        yield depth, t["thought"], call["tool_name"], *call["parameters"].values(), call["tool_result"], t["conclusion"]
        yield from _steps(t.get("subtasks", []), depth + 1)


def test_arith_tape_document_reads_one_token_a_step() -> None:
    doc = arith.gold_document("((17+25)*3)-(48-19)")
    assert list(_steps(doc["reasoning"])) == [
        (1, "0:", "lookup", "0", "(", "9:126"),
        (2, "1:", "lookup", "1", "(", "6:42"),
        (3, "2:", "lookup", "2", "17", "3:17"),
        (3, "3:17", "lookup", "3", "+", "4:17+"),
        (3, "4:17+", "lookup", "4", "25", "5:17+25"),
        (3, "5:17+25", "lookup", "5", ")", "6:17+25)"),
        (3, "6:17+25)", "calculator", "17+25", 42, "6:42)"),
        (2, "6:42", "lookup", "6", "*", "7:42*"),
        (2, "7:42*", "lookup", "7", "3", "8:42*3"),
        (2, "8:42*3", "calculator", "42*3", 126, "8:126"),
        (2, "8:126", "lookup", "8", ")", "9:126)"),
        (1, "9:126", "lookup", "9", "-", "10:126-"),
        (1, "10:126-", "lookup", "10", "(", "15:126-29"),
        (2, "11:", "lookup", "11", "48", "12:48"),
        (2, "12:48", "lookup", "12", "-", "13:48-"),
        (2, "13:48-", "lookup", "13", "19", "14:48-19"),
        (2, "14:48-19", "lookup", "14", ")", "15:48-19)"),
        (2, "15:48-19)", "calculator", "48-19", 29, "15:29)"),
        (1, "15:126-29", "lookup", "15", ")", "16:126-29)"),
        (1, "16:126-29)", "calculator", "126-29", 97, "16:97)"),
    ]
    assert doc["answer"] == "97"


def test_arith_multiplies_at_once_and_adds_when_the_next_operator_is_read() -> None:
    calls = [s[3] for s in _steps(arith.gold_document("1+2*3*4-5")["reasoning"]) if s[2] == "calculator"]
    assert calls == ["2*3", "6*4", "1+24", "25-5"]


def test_arith_each_step_starts_from_its_last_sibling_or_its_parent() -> None:
    """The locality the window rule relies on: a step's thought is its last sibling's conclusion,
    or, first in a group, the position after the parent's `(` with an empty stack."""

    def check(tasks: list[dict], first: str) -> None:
        expected = first
        for t in tasks:
            assert t["thought"] == expected
            if "subtasks" in t:
                check(t["subtasks"], f"{int(t['tooluse']['parameters']['key']) + 1}:")
            expected = t["conclusion"]

    for seed in range(20):
        check(make("arith", 1 + seed, seed).document["reasoning"], "0:")


def test_arith_tape_table_holds_the_tokens_and_the_closing_parenthesis() -> None:
    assert arith.tape_table(" 12 * (3+45) ") == {
        "0": "12", "1": "*", "2": "(", "3": "3", "4": "+", "5": "45", "6": ")", "7": ")"
    }


def test_arith_negative_values_go_to_the_calculator_as_they_are() -> None:
    calls = [s[3] for s in _steps(arith.gold_document("(3-17)*2-(1-9)")["reasoning"]) if s[2] == "calculator"]
    assert calls == ["3-17", "-14*2", "1-9", "-28--8"]


@pytest.mark.parametrize("seed", range(30))
def test_arith_generated_answers_match_python(seed: int) -> None:
    inst = make("arith", 1 + seed % 12, seed)
    assert int(inst.answer) == eval(inst.text)  # the text only holds digits, + - * ( )
    assert inst.check(int(inst.answer)) and not inst.check(int(inst.answer) + 1)


def test_arith_large_sizes_reach_depth_four() -> None:
    def depth(tasks: list[dict]) -> int:
        return 1 + max((depth(t["subtasks"]) for t in tasks if "subtasks" in t), default=0)

    depths = [depth(make("arith", 40, s).document["reasoning"]) for s in range(10)]
    assert min(depths) >= 4, depths


def test_chain_gold_follows_table_in_blocks_of_ten() -> None:
    inst = make("chain", 347, 1)
    n, key = chain.parse_task(inst.text)
    assert n == 347
    blocks = inst.document["reasoning"]
    assert [b["thought"] for b in blocks[:4]] == ["347 left", "340 left", "330 left", "320 left"]
    assert blocks[-1]["thought"] == "10 left" and len(blocks) == 35
    for block in blocks:
        remaining = int(block["thought"].split()[0])
        size = len(block["subtasks"])
        assert size == (remaining % 10 or 10)
        for i, task in enumerate(block["subtasks"]):
            assert task["thought"] == f"{size - i} left"
            assert task["tooluse"]["parameters"]["key"] == key
            key = inst.table[key]
            assert task["conclusion"] == key
        assert block["conclusion"] == key
    assert inst.answer == key == inst.document["answer"]


@pytest.mark.parametrize(
    ("n", "counters"),
    [(1, ["1 left"]), (10, ["10 left"]), (11, ["11 left", "10 left"]), (1000, ["1000 left", "990 left"])],
)
def test_chain_block_counters_take_the_last_digit_then_tens(n: int, counters: list[str]) -> None:
    doc = make("chain", n, 0).document
    assert [b["thought"] for b in doc["reasoning"][: len(counters)]] == counters
    assert sum(len(b["subtasks"]) for b in doc["reasoning"]) == n


def test_chain_at_a_thousand_hops_has_a_thousand_tool_calls() -> None:
    inst = make("chain", 1000, 0)
    assert sum(len(b["subtasks"]) for b in inst.document["reasoning"]) == 1000
    assert len(inst.document["reasoning"]) == 100
    assert chain.solve_gold(inst.text, inst.table).answer == inst.answer


@pytest.mark.parametrize(
    "text", ["follow 0 hops from k1", "go 3 hops from k1", "follow 3 hops from K1", "follow x hops from a"]
)
def test_chain_rejects_bad_task_text(text: str) -> None:
    with pytest.raises(TaskTextError, match="chain task text"):
        chain.parse_task(text)


def test_chain_missing_key_names_the_hop() -> None:
    with pytest.raises(TaskTextError, match="hop 2 of 3"):
        chain.follow({"a1": "b2"}, "a1", 3)


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    keep = [True] * len(text)
    for s, e in spans:
        keep[s:e] = [False] * (e - s)
    return "".join(c for c, k in zip(text, keep) if k)


@pytest.mark.parametrize(
    "prompt, doc",
    [
        ("2*(3+4)-5\n", arith.gold_document("2*(3+4)-5")),
        ("((17+25)*3)-(48-19)\n", arith.gold_document("((17+25)*3)-(48-19)")),
        ("x\n", make("chain", 7, 3).document),
        ("y\n", make("arith", 9, 4).document),
    ],
)
def test_views_equal_gold_text_with_pruned_spans_cut(prompt: str, doc: dict) -> None:
    stream = gold_stream(prompt, doc)
    text = stream.text
    assert text == prompt + json.dumps(doc, ensure_ascii=False)
    views = view_texts(stream)
    ends, spans, total = [], [], 0
    bounds = dict(stream.prunes)
    for n, seg in enumerate(stream.segments, start=1):
        total += len(seg.text)
        if n in bounds:
            ends.append(total)
            spans.extend(bounds[n])
            assert views[len(ends)][0] == _cut(text[:total], spans)
    assert views[0][0] == prompt
    assert views[0][0] + "".join(new for _, new in views) == text


def test_window_keeps_two_finished_siblings_and_collapse_drops_subtasks() -> None:
    doc = {
        "reasoning": [
            {"thought": "a", "subtasks": [{"conclusion": "x"}], "conclusion": "b"},
            {"thought": "c", "conclusion": "d"},
            {"thought": "e", "conclusion": "f"},
        ],
        "answer": "f",
    }
    views = view_texts(gold_stream("p\n", doc))
    assert views[1][0] == 'p\n{"reasoning": [{"thought": "a", "conclusion": "b"}'
    assert views[2][0] == 'p\n{"reasoning": [{"thought": "c", "conclusion": "d"}, {"thought": "e", "conclusion": "f"}'
    assert views[2][1] == '], "answer": "f"}'


def test_collapse_of_last_field_takes_the_separator_before() -> None:
    doc = {"reasoning": [{"thought": "a", "subtasks": [{"conclusion": "x"}]}], "answer": "x"}
    assert view_texts(gold_stream("p\n", doc))[1][0] == 'p\n{"reasoning": [{"thought": "a"}'


def test_token_straddling_a_pruned_span_is_an_error() -> None:
    def pairs(text: str) -> list[tuple[int, int, int]]:
        return [(0, i, min(i + 2, len(text))) for i in range(0, len(text), 2)]

    stream = gold_stream("p\n", make("chain", 5, 0).document)
    with pytest.raises(TokenAlignmentError):
        live_views(stream, pairs)


@pytest.mark.parametrize("n", [1, 2, 12, 23, 40])
def test_every_chain_window_is_a_view_of_the_episode(n: int) -> None:
    inst = make("chain", n, 2)
    keys = chain.follow(inst.table, chain.parse_task(inst.text)[1], n)
    episode = samples.episode_views(inst, char_encoder)
    spans = chain.blocks(n)
    windows = [
        samples.chain_view(n, "close", b, 0, keys.__getitem__, char_encoder) for b in range(len(spans))
    ] + [samples.chain_view(n, "answer", len(spans) - 1, 0, keys.__getitem__, char_encoder)]
    for b, (_, size) in enumerate(spans):
        for t in range(size):
            window = samples.chain_view(n, "hop", b, t, keys.__getitem__, char_encoder)
            # a view that writes several hops holds the window of each as a prefix
            assert any(v.context == window.context and v.new[: len(window.new)] == window.new for v in episode)
            assert window.new[-1] == (ord("}"), "model")
    assert all(w in episode for w in windows)
    assert windows[-1] == episode[-1]


@pytest.mark.parametrize("size", [4, 12])
def test_arith_gold_tool_results_are_what_the_calculator_returns(size: int) -> None:
    from thread.tools.calculator import calculate

    def calls(tasks):
        for t in tasks:
            if "tooluse" in t:
                yield t["tooluse"]
            yield from calls(t.get("subtasks", []))

    for seed in range(10):
        inst = make("arith", size, seed)
        table = arith.tape_table(inst.text)
        for call in calls(inst.document["reasoning"]):
            if call["tool_name"] == "lookup":
                assert table[call["parameters"]["key"]] == call["tool_result"], call
            else:
                assert calculate(call["parameters"]["expression"]) == call["tool_result"], call


def test_arith_refuses_nesting_deeper_than_the_limit() -> None:
    deep = "(" * 101 + "1" + ")" * 101
    with pytest.raises(TaskTextError, match="nest 101 deep"):
        arith.parse(deep)
    assert arith.gold_document("(" * 100 + "1" + ")" * 100)["answer"] == "1"


def test_hand_written_expressions_have_gold_answers_equal_to_python() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "evals" / "examples" / "expressions.txt"
    lines = [s.strip() for s in path.read_text().splitlines() if s.strip() and not s.startswith("#")]
    assert len(lines) >= 20
    for line in lines:
        assert arith.solve_gold(line).answer == str(eval(line)), line
