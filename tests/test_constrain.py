"""Grammar-constrained decoding: the llguidance grammar made from the parser's own grammar."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch

from thread.assets import asset_dir
from thread.constrain import (
    Bounds,
    ConstraintError,
    GrammarConstraint,
    bounds_from_config,
    llguidance_grammar,
)
from thread.models import load_tokenizer
from thread.parser import Parser

BOUNDS = Bounds(max_depth=3, max_items=3, max_steps=4, max_field_chars=40)
CALCULATOR = {
    "name": "calculator",
    "description": "evaluate an arithmetic expression",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
ALPHABET = 'abc xyz 0123456789+-*/()"\\\n\té€😀'


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2")


def random_text(rng: random.Random, max_chars: int) -> str:
    """A string whose JSON form (quotes and escapes included, either way) fits in `max_chars`."""
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_chars)))
    while len(json.dumps(text)) > max_chars:  # the ASCII form is the longer one
        text = text[:-1]
    return text


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(
        ["str", "int", "float", "list", "dict", "const"] if depth < 2 else ["str", "int"]
    )
    if kind == "str":
        return random_text(rng, 300)
    if kind == "int":
        return rng.randint(-(10**6), 10**6)
    if kind == "float":
        return rng.uniform(-1e3, 1e3)
    if kind == "const":
        return rng.choice([True, False, None])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_text(rng, 12): random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_task(rng: random.Random, depth: int, bounds: Bounds) -> dict:
    """A task within `bounds` at nesting `depth` (a top-level task is depth 1)."""
    cap = bounds.max_field_chars
    task: dict = {}
    if rng.random() < 0.3:
        task["title"] = random_text(rng, cap)
    if rng.random() < 0.8:
        task["thought"] = random_text(rng, cap)
    if rng.random() < 0.4:
        task["tooluse"] = {
            "tool_name": "calculator",
            "parameters": {"expression": random_text(rng, cap)},
        }
        if rng.random() < 0.8:  # written by the runtime, so any JSON of any length
            task["tooluse"]["tool_result"] = random_json(rng)
    if depth < bounds.max_depth and rng.random() < 0.5:
        num = rng.randint(0, bounds.max_items)
        task["subtasks"] = [random_task(rng, depth + 1, bounds) for _ in range(num)]
    if rng.random() < 0.9:
        task["conclusion"] = random_text(rng, cap)
    return task


def random_document(rng: random.Random, bounds: Bounds) -> dict:
    num = rng.randint(0, bounds.max_steps or 5)
    reasoning = [random_task(rng, 1, bounds) for _ in range(num)]
    return {"reasoning": reasoning, "answer": random_text(rng, bounds.max_field_chars)}


def parses(text: str, fmt: str = "thread2") -> bool:
    parser = Parser(fmt)
    parser.feed(text)
    parser.close()
    return parser.status == "done" and parser.error is None


def accepts(tokenizer, text: str, bounds: Bounds = BOUNDS, **kwargs) -> bool:
    constraint = GrammarConstraint(tokenizer, "thread2", bounds, **kwargs)
    ok = constraint.consume(tokenizer.encode(text, add_special_tokens=False))
    return ok and constraint.done


# 1) the generated grammar


def test_bounds_are_validated_with_the_name_and_value():
    with pytest.raises(ConstraintError, match="max_depth=0"):
        Bounds(max_depth=0)
    with pytest.raises(ConstraintError, match="spacing='tabs'"):
        Bounds(spacing="tabs")
    with pytest.raises(ConstraintError, match="unknown bounds"):
        bounds_from_config({"bounds": {"max_deep": 2}})
    assert bounds_from_config({"bounds": {"max_depth": 2}}).max_depth == 2
    assert bounds_from_config({}) == Bounds()


def test_grammar_holds_every_terminal_of_the_format():
    text = llguidance_grammar("thread2", BOUNDS)
    for key in (
        "reasoning",
        "answer",
        "thought",
        "tooluse",
        "subtasks",
        "conclusion",
        "tool_result",
    ):
        assert f'"\\"{key}\\""' in text
    assert "& /(?s:.){0,40}/" in text  # the field cap
    assert "%ignore" not in text and '", "' in text  # canonical spacing


def test_a_changed_grammar_changes_the_constraint(tokenizer, tmp_path):
    grammars = asset_dir("grammars")
    lark_text = (grammars / "thread2.lark").read_text().replace('"\\"thought\\""', '"\\"idea\\""')
    (tmp_path / "idea.lark").write_text(lark_text)
    toml_text = (grammars / "thread2.toml").read_text().replace('"thread2.lark"', '"idea.lark"')
    (tmp_path / "idea.toml").write_text(toml_text.replace('name = "thread2"', 'name = "idea"'))
    shutil.copy(grammars / "thread2.toml", tmp_path / "unused.toml")

    constraint = GrammarConstraint(tokenizer, str(tmp_path / "idea.toml"), BOUNDS)
    doc = '{"reasoning": [{"idea": "a", "conclusion": "b"}], "answer": "b"}'
    assert constraint.consume(tokenizer.encode(doc)) and constraint.done
    assert not accepts(tokenizer, doc)


def test_pencil_format_compiles_and_accepts_nested_calls(tokenizer):
    constraint = GrammarConstraint(tokenizer, "pencil", Bounds(max_depth=2, max_items=2))
    text = "solve [CALL] outer [CALL] inner [SEP] 4 [RETURN] [SEP] 5 [RETURN] so 5"
    assert constraint.consume(tokenizer.encode(text)) and constraint.accepting
    assert parses(text, "pencil")
    # PENCIL's TEXT may hold a lone "[", so depth is bounded in the rules, not the language
    rules = llguidance_grammar("pencil", Bounds(max_depth=2)).splitlines()
    assert any(line.startswith("call_2_") for line in rules)
    assert not any(line.startswith("call_3_") for line in rules)


# 2) valid trees within the bounds: accepted by the constraint and by the parser


@pytest.mark.parametrize("seed", range(30))
def test_random_valid_trees_are_accepted_by_both(tokenizer, seed):
    rng = random.Random(seed)
    text = json.dumps(random_document(rng, BOUNDS), ensure_ascii=seed % 2 == 0)
    assert parses(text), text
    assert accepts(tokenizer, text), text


@pytest.mark.parametrize("seed", range(5))
def test_free_spacing_accepts_compact_spaced_and_indented_json(tokenizer, seed):
    bounds = Bounds(
        max_depth=3, max_items=3, max_steps=4, max_field_chars=40, spacing="free", max_whitespace=16
    )
    doc = random_document(random.Random(seed), bounds)
    for text in (
        json.dumps(doc, separators=(",", ":")),
        json.dumps(doc),
        json.dumps(doc, indent=1),
    ):
        assert parses(text)
        assert accepts(tokenizer, text, bounds), text


@pytest.mark.parametrize(
    "spacing, space, within",
    [
        ("free", " " * 3, True),
        ("free", " " * 4, False),
        ("free", "\n\t", True),
        ("canonical", " ", False),
        ("canonical", "", True),
    ],
)
def test_whitespace_runs_are_capped(tokenizer, spacing, space, within):
    bounds = Bounds(spacing=spacing, max_whitespace=3)
    text = "{" + space + '"reasoning": [], "answer": "a"}'
    assert parses(text)
    assert accepts(tokenizer, text, bounds) == within


# 3) past a bound: rejected by the constraint, still accepted by the parser


def _nested(depth: int) -> dict:
    task: dict = {"thought": "t", "conclusion": "c"}
    if depth > 1:
        task = {"thought": "t", "subtasks": [_nested(depth - 1)], "conclusion": "c"}
    return task


@pytest.mark.parametrize(
    "document, within",
    [
        ({"reasoning": [_nested(3)], "answer": "a"}, True),
        ({"reasoning": [_nested(4)], "answer": "a"}, False),
        ({"reasoning": [{"subtasks": [{}] * 3}], "answer": "a"}, True),
        ({"reasoning": [{"subtasks": [{}] * 4}], "answer": "a"}, False),
        ({"reasoning": [{}] * 4, "answer": "a"}, True),
        ({"reasoning": [{}] * 5, "answer": "a"}, False),
        ({"reasoning": [{"thought": "x" * 38}], "answer": "a"}, True),
        ({"reasoning": [{"thought": "x" * 39}], "answer": "a"}, False),
        ({"reasoning": [], "answer": "é" * 38}, True),
        ({"reasoning": [], "answer": "é" * 39}, False),
    ],
)
def test_trees_past_a_bound_are_rejected(tokenizer, document, within):
    text = json.dumps(document, ensure_ascii=False)
    assert parses(text)
    assert accepts(tokenizer, text) == within


# 4) declared tools and text the runtime writes


def test_declared_tools_fix_the_name_and_the_parameters(tokenizer):
    def doc(name: str, parameters: dict) -> str:
        task = {"tooluse": {"tool_name": name, "parameters": parameters}, "conclusion": "3"}
        return json.dumps({"reasoning": [task], "answer": "3"})

    assert accepts(tokenizer, doc("calculator", {"expression": "1+2"}), tools=[CALCULATOR])
    assert not accepts(tokenizer, doc("calculatr", {"expression": "1+2"}), tools=[CALCULATOR])
    assert not accepts(tokenizer, doc("calculator", {"expr": "1+2"}), tools=[CALCULATOR])
    assert accepts(tokenizer, doc("calculatr", {"expr": "1+2"}))


def test_tool_name_and_parameters_are_forced_up_to_the_value(tokenizer):
    constraint = GrammarConstraint(tokenizer, "thread2", BOUNDS, tools=[CALCULATOR])
    assert constraint.consume(tokenizer.encode('{"reasoning": [{"tooluse": {"tool_name": "'))
    forced = tokenizer.decode(constraint.forced())
    assert forced.startswith('calculator", "parameters": {"expression":')


def test_runtime_written_tool_result_may_be_long_and_rollback_restores_state(tokenizer):
    constraint = GrammarConstraint(tokenizer, "thread2", BOUNDS)
    head = (
        '{"reasoning": [{"tooluse": {"tool_name": "calculator", "parameters": {"expression": "2*3"}'
    )
    assert constraint.consume(tokenizer.encode(head))
    before = constraint.mask()
    result = tokenizer.encode(', "tool_result": ' + json.dumps("6 " * 200) + "}")
    assert constraint.consume(result)
    constraint.rollback(len(result))
    assert torch.equal(constraint.mask(), before)
    assert constraint.consume(result)
    assert (
        constraint.consume(tokenizer.encode(', "conclusion": "6"}], "answer": "6"}'))
        and constraint.done
    )


def test_a_bad_token_is_an_error_state_not_an_exception(tokenizer):
    constraint = GrammarConstraint(tokenizer, "thread2", BOUNDS)
    assert not constraint.consume(tokenizer.encode('{"answer": "6"}'))
    assert "not allowed" in constraint.error and "answer" in constraint.error
    assert constraint.mask().all() and constraint.forced() == []
    assert not constraint.consume(tokenizer.encode("}"))


# 5) constrained sampling from uniform random logits always parses


@pytest.mark.parametrize("fast_forward", [True, False])
def test_every_constrained_random_sample_parses(tokenizer, fast_forward):
    bounds = Bounds(max_depth=2, max_items=2, max_steps=2, max_field_chars=16)
    generator = torch.Generator().manual_seed(7 + fast_forward)
    for _ in range(12):
        constraint = GrammarConstraint(tokenizer, "thread2", bounds, tools=[CALCULATOR])
        ids: list[int] = []
        while not constraint.done:
            assert len(ids) < 2000, tokenizer.decode(ids)
            forced = constraint.forced() if fast_forward else []
            if forced:
                chosen = forced
            else:
                allowed = torch.nonzero(constraint.mask()).flatten()
                chosen = [int(allowed[torch.randint(len(allowed), (1,), generator=generator)])]
            if chosen == [tokenizer.eos_token_id]:
                break
            assert constraint.consume(chosen), constraint.error
            ids += chosen
        text = tokenizer.decode(ids)
        assert parses(text), text
