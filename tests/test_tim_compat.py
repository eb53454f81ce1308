"""TIM-8b-preview compatibility, with outputs written in its style (its weights are not here).

TIM writes `{"reasoning": [task, ...], "answer": ...}`; a task has thought, tooluse
(`tool_name`, `parameters`, `tool_result`), subtasks and conclusion. TIMRUN declares tools as
flat OpenAI function objects with `url`, `method` and `timeout`.
"""

from __future__ import annotations

import copy
import json

import pytest

from thread.constrain import GrammarConstraint, bounds_from_config
from thread.formats import load_format
from thread.models import ModelSource, load_tokenizer
from thread.parser import Parser
from thread.prompting import prompt_text, read_model_config, tim_tools
from thread.tools.http import http_tool

SEARCH = {
    "type": "function",
    "name": "SearchTool",
    "description": "a general search engine returns title, url, and description of 10 webpages",
    "url": "http://127.0.0.1:9/search",
    "method": "POST",
    "timeout": 10,
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "A natural language query."}},
        "required": ["query"],
        "additionalProperties": False,
    },
}
READER = {**SEARCH, "name": "ReaderTool", "description": "reads a web page and returns its text"}
READER["parameters"] = {
    "type": "object",
    "properties": {"url": {"type": "string"}},
    "required": ["url"],
}

# What TIM writes for a research question: nested tasks, tool results with structure.
TIM_OUTPUT = {
    "reasoning": [
        {
            "thought": "I should search for influential papers on dog walking first.",
            "tooluse": {
                "tool_name": "SearchTool",
                "parameters": {"query": "influential research papers dog walking"},
                "tool_result": [
                    {
                        "title": "Dog walking and physical activity",
                        "url": "https://example.org/a",
                        "description": "A cohort study.",
                    },
                    {
                        "title": "Walking the dog: a review",
                        "url": "https://example.org/b",
                        "description": "Review, 2019.",
                    },
                ],
            },
            "subtasks": [
                {
                    "thought": "Read the cohort study to confirm its findings.",
                    "tooluse": {
                        "tool_name": "ReaderTool",
                        "parameters": {"url": "https://example.org/a"},
                        "tool_result": {
                            "text": "Owners who walk dogs reach 150 min/week more often.",
                            "ok": True,
                            "n": 1302,
                        },
                    },
                    "subtasks": [],
                    "conclusion": "The cohort study links dog walking to meeting activity guidelines.",
                },
                {
                    "thought": "The review summarises the field; no tool is needed.",
                    "conclusion": "The 2019 review is the standard reference.",
                },
            ],
            "conclusion": "Two key papers: the cohort study and the 2019 review.",
        }
    ],
    "answer": "1. Dog walking and physical activity (cohort study). 2. Walking the dog: a review (2019).",
}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2")


def parse_in_chunks(text: str, size: int = 7) -> tuple[Parser, list]:
    parser = Parser("thread2")
    events = []
    for i in range(0, len(text), size):
        events += parser.feed(text[i : i + size])
    return parser, events + parser.close()


@pytest.mark.parametrize("layout", [{}, {"indent": 2}, {"separators": (",", ":")}])
def test_tim_output_parses_and_its_tool_fields_are_recognised(layout):
    text = json.dumps(TIM_OUTPUT, **layout)
    parser, events = parse_in_chunks(text)
    assert parser.status == "done", parser.error
    ready = [e for e in events if e.kind == "tool_ready"]
    assert [(e.path, e.value["name"]) for e in ready] == [
        ("0", "SearchTool"),
        ("0.0", "ReaderTool"),
    ]
    assert ready[1].value["parameters"] == {"url": "https://example.org/a"}
    results = [e for e in events if e.kind == "field_end" and e.field == "tool_result"]
    assert results[0].value == TIM_OUTPUT["reasoning"][0]["tooluse"]["tool_result"]
    answer = [e.value for e in events if e.kind == "field_end" and e.field == "answer"]
    assert answer == [TIM_OUTPUT["answer"]]


def test_tool_ready_fires_before_the_result_so_the_runtime_can_write_it():
    text = json.dumps(TIM_OUTPUT)
    head = text[: text.index(', "tool_result"')]
    parser = Parser("thread2")
    events = parser.feed(head)
    assert [e.value["name"] for e in events if e.kind == "tool_ready"] == ["SearchTool"]
    result = TIM_OUTPUT["reasoning"][0]["tooluse"]["tool_result"]
    written = load_format("thread2").tool.render_result(json.dumps(result))
    assert written.startswith(', "tool_result": ')
    events = parser.feed(written)
    assert [e.value for e in events if e.kind == "field_end" and e.field == "tool_result"] == [
        result
    ]


def test_tim_models_are_recognised_by_name_and_get_tim_defaults(tmp_path):
    for source in (
        "SubconsciousDev/TIM-8b-preview",
        ModelSource("x", "local", str(tmp_path / "tim-8b")),
    ):
        config = read_model_config(source)
        assert config["style"] == "tim" and config["rules"] == "tim"
    assert read_model_config("smollm2")["style"] == "chat"


def test_tim_output_fits_the_constraint_for_tim(tokenizer):
    bounds = bounds_from_config(read_model_config("SubconsciousDev/TIM-8b-preview"))
    tools = [http_tool(SEARCH).declaration(), http_tool(READER).declaration()]
    for text in (json.dumps(TIM_OUTPUT), json.dumps(TIM_OUTPUT, indent=2)):
        constraint = GrammarConstraint(tokenizer, "thread2", bounds, tools=tools)
        assert constraint.consume(tokenizer.encode(text)), constraint.error
        assert constraint.accepting


def test_tim_prompt_declares_tools_the_timrun_way_through_the_chat_template(tokenizer):
    tools = [http_tool(SEARCH), http_tool(READER)]
    declared = tim_tools([t.declaration() for t in tools])
    assert declared[0] == {
        "type": "function",
        **{k: SEARCH[k] for k in ("name", "description", "parameters")},
    }

    qwen_like = copy.deepcopy(tokenizer)
    qwen_like.chat_template = (
        "{% if tools %}<|im_start|>system\n<tools>{% for t in tools %}\n{{ t | tojson }}{% endfor %}"
        "\n</tools><|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n"
        "{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = read_model_config("SubconsciousDev/TIM-8b-preview")
    text = prompt_text(qwen_like, "find papers on dog walking", tools=tools, config=config)
    assert '"name": "SearchTool"' in text and '"type": "function"' in text
    assert "Answer with one JSON object" not in text  # TIM knows the format; no tutorial
    assert text.endswith("<|im_start|>assistant\n")

    plain_chat = copy.deepcopy(tokenizer)  # SmolLM2's template has no tools: a system message
    text = prompt_text(plain_chat, "find papers", tools=tools, config=config)
    assert text.index("Tools: [") < text.index("find papers")


@pytest.mark.xfail(
    strict=True, reason="thread2.lark has no `null` for tooluse/subtasks, which TIM's schema allows"
)
def test_tim_null_tooluse_and_subtasks_parse():
    task = {"thought": "no tool here", "tooluse": None, "subtasks": None, "conclusion": "done"}
    parser, _ = parse_in_chunks(json.dumps({"reasoning": [task], "answer": "done"}))
    assert parser.status == "done"
