"""The API users call: `thread.solve(task)` and `Session`, which keeps a loaded model for many solves.

A solve builds the prompt, runs the decode loop under a controller (parser, rules, tools) and
returns the answer, the tree, the ledger and where the trace went. Failures of the model (it left
the format, ran out of budget) are results with a status, not exceptions; the trace is written as
the run goes either way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thread.controller import Controller
from thread.formats import load_format
from thread.ledger import Ledger
from thread.models import load_model, resolve
from thread.prompting import build_prompt, read_model_config
from thread.rules import load_rules
from thread.runner import DecodeLoop, Sampling
from thread.tools import ToolRegistry, builtin_tools
from thread.trace import TraceWriter

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "thread-tiny"


@dataclass
class SolveResult:
    """What one solve produced. `status` is `done` when the model finished a valid document."""

    answer: Any
    tree: dict[str, Any]
    ledger: dict[str, Any]
    status: str
    message: str | None = None
    trace_path: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer, "status": self.status, "message": self.message, "complete": self.complete,
            "tree": self.tree, "ledger": self.ledger, "trace": self.trace_path, "tool_calls": self.tool_calls,
        }


class Session:
    """A loaded model and its defaults (format, rules, tools, prompt), reused across solves."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        dtype: str = "float32",
        device: str | None = None,
        device_map: str | dict | None = None,
        gguf_file: str | None = None,
        format: str | None = None,
    ) -> None:
        self.model_name = model
        self.model, self.tokenizer = load_model(model, dtype=dtype, device=device, device_map=device_map, gguf_file=gguf_file)
        self.model.eval()
        self.config = read_model_config(resolve(model, gguf_file))
        self.fmt = load_format(format or self.config.get("format", "thread2"))
        self.eos_ids = _eos_ids(self.model, self.tokenizer)

    def solve(
        self,
        task: str,
        *,
        tools: ToolRegistry | list[str] | None = None,
        table: str | Path | dict | None = None,
        rules: str | Path | None = None,
        max_live_tokens: int | None = None,
        max_new_tokens: int | None = None,
        trace: str | Path | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        constrained: bool | None = None,
    ) -> SolveResult:
        # 1) what this solve runs with: tools, rules, budget, grammar
        if not task.strip():
            raise ValueError("the task text is empty: give the model something to solve")
        table = _family_table(task, table, tools, self.config)
        registry = _tool_registry(tools, table, self.config)
        rule_set = load_rules(rules or self.config.get("rules", "collapse"), self.fmt)
        if max_live_tokens is None:  # the model's own window, where its config declares one
            max_live_tokens = self.config.get("max_live_tokens") or self.config.get("context_window")
        if constrained is None:
            constrained = bool(self.config.get("constrained", True))
        constraint = self._constraint(registry) if constrained else None

        # 2) the run, traced as it goes
        writer = TraceWriter(trace)
        ledger = Ledger()
        prompt_ids = build_prompt(self.tokenizer, task, tools=registry, fmt=self.fmt, config=self.config)
        writer.write(
            "start", model=self.model_name, format=self.fmt.name, rules=rule_set.name, task=task,
            tools=registry.names() if registry else [], max_live_tokens=max_live_tokens,
            prompt_tokens=len(prompt_ids), temperature=temperature, top_p=top_p, seed=seed,
        )
        controller = Controller(self.fmt, rule_set, self.tokenizer, tools=registry, trace=writer, ledger=ledger)
        loop = DecodeLoop(
            self.model, controller, Sampling(temperature, top_p, seed), constraint=constraint,
            max_live_tokens=max_live_tokens, max_new_tokens=(
                max_new_tokens if max_new_tokens is not None
                else _family_token_cap(task, self.config) or self.config.get("max_new_tokens", 4096)
            ),
            eos_ids=self.eos_ids,
        )
        try:
            stats = loop.run(prompt_ids)
        finally:
            status = loop.stats.status
            tree = controller.parser.tree
            result = SolveResult(
                answer=tree.to_json().get(self.fmt.answer) if self.fmt.answer else None, tree=tree.to_json(), ledger=ledger.to_json(), status=status,
                message=loop.stats.message, trace_path=str(trace) if trace else None,
                tool_calls=[vars(c) for c in controller.tool_calls], complete=tree.complete,
            )
            writer.write("end", status=status, message=loop.stats.message, answer=result.answer, ledger=result.ledger)
            writer.close()
        logger.debug("solve finished: %s after %d tokens", stats.status, stats.num_decoded)
        return result

    def _constraint(self, registry: ToolRegistry) -> Any:
        from thread.constrain import GrammarConstraint, bounds_from_config

        return GrammarConstraint(self.tokenizer, self.fmt, bounds_from_config(self.config), tools=registry.declarations())


def solve(task: str, *, model: str = DEFAULT_MODEL, **options: Any) -> SolveResult:
    """Load `model`, solve one task, return the result. For many tasks, keep a `Session`."""
    load_keys = {"dtype", "device", "device_map", "gguf_file", "format"}
    session = Session(model, **{k: options.pop(k) for k in list(options) if k in load_keys})
    return session.solve(task, **options)


def _family_table(task: str, table: Any, tools: Any, config: dict) -> Any:
    """The `lookup` table a solve runs with, for a model trained on task families (its config
    lists `families`): an expression is read through a table of its tokens (`arith.tape_table`);
    a chain uses the table given. Refuses a task that cannot be solved as written (a chain
    without a table, a malformed expression) before any decoding, and warns when the text fits
    none of the families or lies outside what was trained."""
    families = config.get("families") or {}
    if not families:
        return table
    from thread.tasks import arith, chain

    if "chain" in families and chain.TASK_RE.fullmatch(task):
        num_hops, key = chain.parse_task(task)  # N >= 1, key shape
        if table is None and not isinstance(tools, ToolRegistry):
            raise ValueError(
                f"task {task!r} follows a lookup chain but no table was given "
                "(Python: table=PATH or dict; CLI: --table FILE)"
            )
        spec = families["chain"]
        lo, hi = spec.get("key_lengths_trained", (1, 12))
        if not lo <= len(key) <= hi:
            logger.warning(
                "key %r has %d characters; this model was trained on keys of %d to %d",
                key, len(key), lo, hi,
            )
        if num_hops > spec.get("max_hops_trained", num_hops):
            logger.warning(
                "%d hops is more than the %d this model was trained on",
                num_hops, spec["max_hops_trained"],
            )
        return table
    if "arith" in families and _looks_like_arithmetic(task):
        text, _ = arith.parse(task)  # a TaskTextError names the character
        levels = 1 + arith.max_nesting(text)
        max_depth = config.get("bounds", {}).get("max_depth")
        if families["arith"].get("format") == "tape" and max_depth and levels > max_depth:
            raise ValueError(
                f"task {task!r}: parentheses nest {levels - 1} deep, and this model writes at most "
                f"{max_depth} levels of tasks (bounds.max_depth in its thread.json)"
            )
        num_ops = sum(text.count(op) for op in "+-*")
        if num_ops > families["arith"].get("max_ops_trained", num_ops):
            logger.warning(
                "%d operations is more than the %d this model was trained on",
                num_ops, families["arith"]["max_ops_trained"],
            )
        if families["arith"].get("format") != "tape":
            return table
        tape = arith.tape_table(task)
        if table is not None and table != tape:
            raise ValueError(
                f"task {task!r} is an expression, which the model reads from a table of its own "
                "tokens (thread.tasks.arith.tape_table): give no table"
            )
        return tape
    logger.warning(
        "task %r fits none of the families this model was trained on (%s); expect a guess",
        task, ", ".join(f"{name}: {spec.get('task_text', '?')}" for name, spec in families.items()),
    )
    return table


def _looks_like_arithmetic(task: str) -> bool:
    """Digits and operator characters only: an expression, well formed or not."""
    return any(c.isdigit() for c in task) and set(task) <= set("0123456789+-*/%^.() \t")


def _family_token_cap(task: str, config: dict) -> int | None:
    """A default decode cap for a family task: room for its whole gold document, twice over
    (a chain hop takes about 26 tokens, an expression about 50 a token read), so that a long
    chain is not cut by the general default and a model that loops still stops."""
    families = config.get("families") or {}
    from thread.tasks import TaskTextError, arith, chain

    try:
        if "chain" in families and chain.TASK_RE.fullmatch(task):
            return 64 * chain.parse_task(task)[0] + 1024
        if "arith" in families and families["arith"].get("format") == "tape":
            return 128 * len(arith.tape_table(task)) + 1024
    except TaskTextError:
        return None
    return None


def _tool_registry(tools: Any, table: Any, config: dict) -> ToolRegistry:
    if isinstance(tools, ToolRegistry):
        return tools
    available = builtin_tools(table=table)
    names = tools if tools is not None else config.get("tools", available.names())
    registry = ToolRegistry()
    for name in names:
        registry.register(available.get(name))
    return registry


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


def result_json(result: SolveResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, indent=2)
