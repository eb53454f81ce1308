"""Tools the model calls inside the decode loop: the registry, the built-ins and HTTP tools.

`builtin_tools()` gives a registry with `calculator` and `lookup`; `tool` turns a Python
function into a `Tool`; `load_http_tools` reads TIM-style HTTP tool declarations.
Every fault a tool meets is returned as the result `{"error": "<message>"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from thread.tools.calculator import CalculatorError, CalculatorLimits, calculate, calculator_tool
from thread.tools.http import HttpToolSpec, http_tool, load_http_tools
from thread.tools.lookup import LookupTableError, load_table, lookup_tool
from thread.tools.registry import (
    Tool,
    ToolDefinitionError,
    ToolError,
    ToolOutcome,
    ToolRegistry,
    result_text,
    tool,
)

__all__ = [
    "CalculatorError",
    "CalculatorLimits",
    "HttpToolSpec",
    "LookupTableError",
    "Tool",
    "ToolDefinitionError",
    "ToolError",
    "ToolOutcome",
    "ToolRegistry",
    "builtin_tools",
    "calculate",
    "calculator_tool",
    "http_tool",
    "load_http_tools",
    "load_table",
    "lookup_tool",
    "result_text",
    "tool",
]


def builtin_tools(table: Mapping[str, object] | str | Path | None = None) -> ToolRegistry:
    """A registry with `calculator` and `lookup` (over `table`; empty when None)."""
    return ToolRegistry([calculator_tool(), lookup_tool(table)])
