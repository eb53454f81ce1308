"""Prompts: plain templates from thread.json, chat prompts with one worked example."""

from __future__ import annotations

import json

import pytest

from thread.constrain import GrammarConstraint, bounds_from_config
from thread.models import ModelSource, load_tokenizer
from thread.parser import Parser
from thread.prompting import (
    EXAMPLES,
    build_messages,
    build_prompt,
    example_document,
    prompt_text,
    read_model_config,
)
from thread.tools import builtin_tools


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2")


def folder_source(tmp_path, config: dict | str | None) -> ModelSource:
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (tmp_path / "thread.json").write_text(text)
    return ModelSource(tmp_path.name, "local", str(tmp_path))


def test_smollm2_gets_the_chat_style_with_tight_bounds():
    config = read_model_config("smollm2")
    assert config["style"] == "chat" and config["format"] == "thread2"
    assert bounds_from_config(config).max_depth <= 3


def test_thread_json_overrides_defaults_and_selects_the_plain_style(tmp_path):
    config = read_model_config(
        folder_source(tmp_path, {"prompt_template": "{task}\n", "rules": "window"})
    )
    assert config["style"] == "plain" and config["rules"] == "window"


@pytest.mark.parametrize(
    "content, message", [("{not json", "not valid JSON"), ({"style": "poem"}, "style 'poem'")]
)
def test_bad_thread_json_names_the_file(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        read_model_config(folder_source(tmp_path, content))


def test_plain_template_puts_the_task_in_place(tokenizer):
    config = {"style": "plain", "prompt_template": "{task}\n"}
    assert prompt_text(tokenizer, "1+2", config=config) == "1+2\n"
    assert tokenizer.decode(build_prompt(tokenizer, "1+2", config=config)) == "1+2\n"
    with pytest.raises(ValueError, match="must contain"):
        prompt_text(tokenizer, "1+2", config={"style": "plain", "prompt_template": "go"})


def test_chat_prompt_declares_the_tools_and_ends_at_the_reply(tokenizer):
    config = read_model_config("smollm2")
    text = prompt_text(tokenizer, "((17+25)*3)-(48-19)", tools=builtin_tools(), config=config)
    assert "calculator:" in text and '"expression": string' in text and "lookup:" in text
    assert text.rstrip().endswith("<|im_start|>assistant")
    assert text.index("((17+25)*3)-(48-19)") > text.index(EXAMPLES["calculator"][0])
    assert len(build_prompt(tokenizer, "1+2", tools=builtin_tools(), config=config)) < 512


def test_chat_prompt_without_tools_says_so_and_has_no_example():
    messages = build_messages("say hi", tools=[])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "No tools" in messages[0]["content"]


@pytest.mark.parametrize("tool", sorted(EXAMPLES))
def test_worked_examples_parse_and_fit_the_chat_constraint(tokenizer, tool):
    _, text = example_document(tool)
    parser = Parser("thread2")
    events = parser.feed(text) + parser.close()
    assert parser.status == "done"
    assert [e.value["name"] for e in events if e.kind == "tool_ready"] == [tool] * len(
        EXAMPLES[tool][1]
    )
    bounds = bounds_from_config(read_model_config("smollm2"))
    constraint = GrammarConstraint(
        tokenizer, "thread2", bounds, tools=builtin_tools().declarations()
    )
    assert constraint.consume(tokenizer.encode(text)) and constraint.done


def test_unknown_format_and_missing_chat_template_are_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="no chat prompt"):
        build_messages("x", fmt="yaml")

    class Bare:
        chat_template = None

    with pytest.raises(ValueError, match="needs a chat template"):
        prompt_text(Bare(), "x", config={"style": "chat"})


def test_pencil_gets_its_own_system_prompt():
    messages = build_messages("2+2", tools=builtin_tools(), fmt="pencil")
    assert "[CALL]" in messages[0]["content"] and len(messages) == 2
