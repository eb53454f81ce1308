"""Prompts that get a model to write its reasoning in a format, with the declared tools.

Three styles: `plain` (a model trained on the format: its `thread.json` gives a
`prompt_template`), `chat` (a general instruct model: a short system prompt and one worked
example through its chat template) and `tim` (TIM models: trained on Thread-2, so only the
task and the tools, declared the way TIMRUN declares them). It does not run the model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STYLES = ("plain", "chat", "tim")
TIM_NAME = re.compile(r"(^|[/\\])tim[-_]", re.IGNORECASE)
CONFIG_FILE = "thread.json"

# Defaults for models without a thread.json: TIM writes long, deep trees; a 135M model must not.
TIM_CONFIG = {
    "style": "tim",
    "format": "thread2",
    "rules": "tim",
    "bounds": {
        "max_depth": 6,
        "max_items": 12,
        "max_field_chars": 4000,
        "spacing": "free",
        "max_whitespace": None,
    },
}
CHAT_CONFIG = {
    "style": "chat",
    "format": "thread2",
    "rules": "collapse",
    "bounds": {"max_depth": 2, "max_items": 3, "max_steps": 4, "max_field_chars": 120},
}

THREAD2_SYSTEM = """\
Answer with one JSON object and nothing else: {{"reasoning": [task, ...], "answer": "..."}}.
A task is {{"thought": "...", "tooluse": {{...}}, "subtasks": [task, ...], "conclusion": "..."}}; \
tooluse and subtasks are optional. Split hard steps into subtasks.
To call a tool write "tooluse": {{"tool_name": "NAME", "parameters": {{...}}}} and stop: \
its "tool_result" is added for you. Then write the conclusion.
{tools}"""

PENCIL_SYSTEM = """\
Think in plain text. For a sub-problem write [CALL] its question [SEP] its answer [RETURN]; \
calls may nest. End with the final answer.
{tools}"""

SYSTEMS = {"thread2": THREAD2_SYSTEM, "pencil": PENCIL_SYSTEM}

# One worked example per built-in tool: (task, [(thought, parameters, result)], answer).
# A small model copies the example's shape, so the calculator example sends the whole
# expression in one call, inside a subtask that collapses when its parent closes.
EXAMPLES = {
    "calculator": ("(2+3)*4", [("Use the calculator.", {"expression": "(2+3)*4"}, 20)], "20"),
    "lookup": (
        "follow 2 hops from k1",
        [("Look up k1.", {"key": "k1"}, "k7"), ("Look up k7.", {"key": "k7"}, "k3")],
        "k3",
    ),
}


# 1) what a model wants: its thread.json, or defaults for its style


def read_model_config(source: Any) -> dict:
    """A model's `thread.json` over the defaults of its style (`source`: ModelSource or a name)."""
    from thread.models import ModelSource, resolve

    source = source if isinstance(source, ModelSource) else resolve(str(source))
    is_tim = bool(TIM_NAME.search(source.location)) or bool(TIM_NAME.search(source.name))
    config = json.loads(json.dumps(TIM_CONFIG if is_tim else CHAT_CONFIG))
    path = Path(source.location) / CONFIG_FILE
    if source.kind != "hub" and path.is_file():
        try:
            declared = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        config.update(declared)
        if "prompt_template" in declared and "style" not in declared:
            config["style"] = "plain"
    if config["style"] not in STYLES:
        raise ValueError(f"{path}: style {config['style']!r} is not one of {STYLES}")
    return config


def tool_declarations(tools: Any) -> list[dict]:
    """`{name, description, parameters}` for a ToolRegistry, a list of Tools, or dicts."""
    if tools is None:
        return []
    if hasattr(tools, "declarations"):
        return list(tools.declarations())
    return [t.declaration() if hasattr(t, "declaration") else dict(t) for t in tools]


# 2) the text of a prompt


def describe_tools(declarations: list[dict]) -> str:
    if not declarations:
        return "No tools are available."
    lines = ["Tools:"]
    for tool in declarations:
        props = tool.get("parameters", {}).get("properties", {})
        args = ", ".join(f'"{k}": {v.get("type", "any")}' for k, v in props.items())
        lines.append(f"- {tool['name']}: {tool.get('description', '')} Parameters: {{{args}}}")
    return "\n".join(lines)


def example_document(tool: str) -> tuple[str, str] | None:
    """A worked (task, Thread-2 text) pair using a built-in tool, or None for other tools."""
    if tool not in EXAMPLES:
        return None
    task, steps, answer = EXAMPLES[tool]
    subtasks = [
        {
            "thought": thought,
            "tooluse": {"tool_name": tool, "parameters": parameters, "tool_result": result},
            "conclusion": str(result),
        }
        for thought, parameters, result in steps
    ]
    top = {"thought": f"Solve {task}.", "subtasks": subtasks, "conclusion": f"{task}: {answer}"}
    return task, json.dumps({"reasoning": [top], "answer": answer}, ensure_ascii=False)


def build_messages(
    task: str, *, tools: Any = None, fmt: str = "thread2", style: str = "chat"
) -> list[dict]:
    """Chat messages for `task`: a system prompt, maybe one worked example, the task."""
    declarations = tool_declarations(tools)
    fmt_name = getattr(fmt, "name", fmt)
    if style == "tim":
        return [{"role": "user", "content": task}]
    if fmt_name not in SYSTEMS:
        raise ValueError(f"format {fmt_name!r} has no chat prompt; known: {sorted(SYSTEMS)}")
    messages = [
        {"role": "system", "content": SYSTEMS[fmt_name].format(tools=describe_tools(declarations))}
    ]
    example = next(
        (example_document(t["name"]) for t in declarations if t["name"] in EXAMPLES), None
    )
    if example is not None and fmt_name == "thread2":
        messages += [
            {"role": "user", "content": example[0]},
            {"role": "assistant", "content": example[1]},
        ]
    messages.append({"role": "user", "content": task})
    return messages


def tim_tools(declarations: list[dict]) -> list[dict]:
    """Tools as TIMRUN's API declares them: flat `{"type": "function", name, description, parameters}`."""
    return [{"type": "function", **tool} for tool in declarations]


def prompt_text(
    tokenizer: Any,
    task: str,
    *,
    tools: Any = None,
    fmt: Any = "thread2",
    config: dict | None = None,
) -> str:
    """The prompt as text: the `plain` template, or the chat template over the messages."""
    config = config or CHAT_CONFIG
    style = config.get("style", "chat")
    if style == "plain":
        template = config.get("prompt_template")
        if not template or "{task}" not in template:
            raise ValueError(f"prompt_template {template!r} must contain '{{task}}'")
        return template.replace("{tools}", describe_tools(tool_declarations(tools))).replace(
            "{task}", task
        )
    messages = build_messages(task, tools=tools, fmt=getattr(fmt, "name", fmt), style=style)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            f"style {style!r} needs a chat template, and this tokenizer has none; "
            "give the model a thread.json with a prompt_template"
        )
    extra = {}
    if style == "tim":
        declarations = tool_declarations(tools)
        if "tools" in tokenizer.chat_template:
            extra["tools"] = tim_tools(declarations)
        elif declarations:
            tools_json = json.dumps(tim_tools(declarations), ensure_ascii=False)
            messages.insert(0, {"role": "system", "content": f"Tools: {tools_json}"})
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **extra
    )


def build_prompt(
    tokenizer: Any,
    task: str,
    *,
    tools: Any = None,
    fmt: Any = "thread2",
    config: dict | None = None,
) -> list[int]:
    """Token ids of the prompt; the model's reply starts right after them."""
    text = prompt_text(tokenizer, task, tools=tools, fmt=fmt, config=config)
    ids = tokenizer.encode(text, add_special_tokens=False)
    logger.debug("prompt: %d tokens, style %s", len(ids), (config or {}).get("style", "chat"))
    return ids
