"""Tools and the registry that runs them inside the decode loop.

A `Tool` is a name, a description, a JSON schema for its parameters and a Python callable.
`ToolRegistry.call` validates the arguments, runs the tool in a worker thread under a time
limit and returns a `ToolOutcome`; a tool's fault becomes its result (`{"error": "..."}`),
never an exception, so the run goes on. It does not parse model output or touch the cache.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import jsonschema

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_RESULT_CHARS = 4000
MAX_ERROR_CHARS = 1000  # a fault message quoting a huge argument is clipped to this
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_TYPE_TO_SCHEMA = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolError(ValueError):
    """Raised by a tool for a fault the model should read: its message becomes the result."""


class ToolDefinitionError(ValueError):
    """A tool, a schema or a declaration is malformed (raised at setup, never during a run)."""


@dataclass
class Tool:
    """A callable the model may use: `fn(**arguments)` returns a JSON-serialisable value."""

    name: str
    description: str
    parameters: dict
    fn: Callable[..., object] = field(repr=False)
    timeout_s: float | None = None  # overrides the registry's limit when set (HTTP tools)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME.fullmatch(self.name):
            raise ToolDefinitionError(
                f"tool name {self.name!r} is invalid: use 1-64 letters, digits, '_', '.', '-'"
            )
        if self.parameters.get("type") != "object":
            raise ToolDefinitionError(
                f"tool {self.name!r}: parameters schema must have type 'object', "
                f"got {self.parameters.get('type')!r}"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(self.parameters)
        except jsonschema.SchemaError as e:
            raise ToolDefinitionError(f"tool {self.name!r}: invalid parameters schema: {e.message}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ToolDefinitionError(
                f"tool {self.name!r}: timeout_s must be > 0, got {self.timeout_s}"
            )
        self._validator = jsonschema.Draft202012Validator(self.parameters)

    def __call__(self, **arguments: object) -> object:
        return self.fn(**arguments)

    def declaration(self) -> dict:
        """What a prompt shows the model: name, description, parameters."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def check_arguments(self, arguments: object) -> str | None:
        """Return why `arguments` fail the schema (path, value, what is allowed), or None."""
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(arguments))
        if error is None:
            return None
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"invalid parameters for tool {self.name!r} at parameters{where}: {error.message}"


@dataclass(frozen=True)
class ToolOutcome:
    """One tool call as recorded: `result` is what the model reads (`{"error": ...}` on a fault)."""

    name: str
    arguments: object
    result: object
    error: str | None
    seconds: float
    truncated: bool = False

    @property
    def text(self) -> str:
        """The result as the JSON text written after `"tool_result": `."""
        return result_text(self.result)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "error": self.error,
            "seconds": self.seconds,
            "truncated": self.truncated,
        }


def result_text(result: object) -> str:
    """The JSON text of a result, as the transcript holds it (UTF-8, `", "` and `": "`)."""
    return json.dumps(result, ensure_ascii=False, allow_nan=False)


def truncate_result(result: object, max_chars: int) -> tuple[object, int]:
    """Fit a result's JSON text into `max_chars`; return (result, number of chars dropped).

    An oversized string keeps its head; any other value becomes a string holding the head of
    its JSON text. Both end with the marker `…[truncated N chars]`. An error result keeps its
    `{"error": ...}` shape with its message shortened the same way.
    """
    text = result_text(result)
    if len(text) <= max_chars:
        return result, 0
    if isinstance(result, dict) and set(result) == {"error"} and isinstance(result["error"], str):
        message, dropped = _fit(result["error"], max_chars - len('{"error": }'))
        return {"error": message}, dropped
    if isinstance(result, str):
        return _fit(result, max_chars)
    return _fit(text, max_chars)


def _fit(text: str, max_chars: int) -> tuple[str, int]:
    """The longest head of `text` plus a marker whose JSON string fits in `max_chars`."""

    def cut(k: int) -> str:
        return f"{text[:k]}…[truncated {len(text) - k} chars]"

    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(result_text(cut(mid))) <= max_chars:
            lo = mid
        else:
            hi = mid - 1
    return cut(lo), len(text) - lo


class ToolRegistry:
    """The tools a run may call, by name; `call` never raises for a tool's fault."""

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if max_result_chars < 1:
            raise ValueError(f"max_result_chars must be >= 1, got {max_result_chars}")
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool, *, replace: bool = False) -> Tool:
        if not isinstance(tool, Tool):
            raise ToolDefinitionError(f"register() takes a Tool, got {type(tool).__name__}")
        if tool.name in self._tools and not replace:
            raise ToolDefinitionError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        if name not in self._tools:
            raise KeyError(self._unknown(name))
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def declarations(self) -> list[dict]:
        """The tool list a prompt shows the model, in registration order."""
        return [t.declaration() for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def call(
        self,
        name: str,
        arguments: object,
        *,
        timeout_s: float | None = None,
        max_result_chars: int | None = None,
    ) -> ToolOutcome:
        """Run tool `name` on `arguments` and record the outcome; never raises for a fault.

        The time limit is the tool's own `timeout_s` when it declares one, else `timeout_s`,
        else the registry's. A tool that runs past it is abandoned in its daemon thread.
        """
        start = time.perf_counter()
        max_chars = self.max_result_chars if max_result_chars is None else max_result_chars
        error = self._fault_before_run(name, arguments)
        if error is None:
            t = self._tools[name]
            result, error = _run_with_timeout(
                t, arguments, t.timeout_s or timeout_s or self.timeout_s
            )
        if error is not None:
            error = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "…"
            log.debug("tool %s fault: %s", name, error)
            result = {"error": error}

        result, dropped = truncate_result(result, max_chars)
        if dropped:
            log.warning(
                "tool %s result cut to %d chars: %d chars dropped", name, max_chars, dropped
            )
        return ToolOutcome(name, arguments, result, error, time.perf_counter() - start, dropped > 0)

    def _fault_before_run(self, name: object, arguments: object) -> str | None:
        if not isinstance(name, str):
            return f"the tool name must be a string, got {name!r}"
        if name not in self._tools:
            return self._unknown(name)
        return self._tools[name].check_arguments(arguments)

    def _unknown(self, name: str) -> str:
        known = ", ".join(self._tools) or "none"
        return f"unknown tool {name!r}; known tools: {known}"


def _run_with_timeout(t: Tool, arguments: dict, timeout_s: float) -> tuple[object, str | None]:
    """Run `t(**arguments)` in a daemon thread; return (result, error message or None)."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            value = t.fn(**arguments)
        except ToolError as e:
            box["error"] = str(e)
            return
        except BaseException as e:  # noqa: BLE001 (the worker must report whatever the tool raised)
            box["error"] = f"{type(e).__name__}: {e}"
            return
        try:
            result_text(value)
        except (TypeError, ValueError) as e:
            box["error"] = f"tool {t.name!r} returned a value that is not JSON: {e}"
            return
        box["result"] = value

    worker = threading.Thread(target=work, name=f"tool-{t.name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        log.warning("tool %s did not finish within %g s; abandoning it", t.name, timeout_s)
        return None, f"tool {t.name!r} did not finish within {timeout_s:g} s"
    if "error" in box:
        return None, str(box["error"])
    return box["result"], None


def tool(
    fn: Callable[..., object] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    schema: dict | None = None,
) -> Tool | Callable[[Callable[..., object]], Tool]:
    """Make a `Tool` from a function, as `@tool` or `@tool(name=..., schema=...)`.

    Without `schema`, one is derived from the type hints (str, int, float, bool, list[...],
    dict[str, ...], `X | None`); parameters with defaults are optional. The description
    defaults to the docstring's first paragraph.
    """

    def make(f: Callable[..., object]) -> Tool:
        tool_name = name or f.__name__
        doc = inspect.getdoc(f) or ""
        return Tool(
            name=tool_name,
            description=description if description is not None else doc.split("\n\n")[0].strip(),
            parameters=schema if schema is not None else schema_from_hints(f, tool_name),
            fn=f,
        )

    return make(fn) if fn is not None else make


def schema_from_hints(fn: Callable[..., object], tool_name: str) -> dict:
    """Derive a parameters schema from a function's type hints."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception as e:
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot read type hints: {e}") from e
    properties, required = {}, []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {p.name!r} must be a plain or keyword parameter"
            )
        if p.name not in hints:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: parameter {p.name!r} has no type hint; "
                "add one or pass schema="
            )
        properties[p.name] = _type_schema(
            hints[p.name], f"tool {tool_name!r}, parameter {p.name!r}"
        )
        if p.default is p.empty:
            required.append(p.name)
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _type_schema(hint: object, where: str) -> dict:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _TYPE_TO_SCHEMA:
        return {"type": _TYPE_TO_SCHEMA[hint]}
    if hint is list or origin is list:
        return (
            {"type": "array", "items": _type_schema(args[0], where)} if args else {"type": "array"}
        )
    if hint is dict or origin is dict:
        if args and args[0] is not str:
            raise ToolDefinitionError(f"{where}: dict keys must be str, got {args[0]!r}")
        out = {"type": "object"}
        if args:
            out["additionalProperties"] = _type_schema(args[1], where)
        return out
    if origin in (typing.Union, types.UnionType):
        return {
            "anyOf": [
                _type_schema(a, where) if a is not type(None) else {"type": "null"} for a in args
            ]
        }
    raise ToolDefinitionError(
        f"{where}: type {hint!r} has no derived schema; use str, int, float, bool, list[...], "
        "dict[str, ...] or X | None, or pass schema="
    )
