"""The built-in `lookup` tool: key → value from a table the user passes.

A table is a dict, or a path to a JSON file (one object: key → any JSON value) or a CSV file
(two columns, key then value; a first row `key,value` is a header and skipped; values stay
strings). The table is loaded once, checked, and never shown whole to the model.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

from thread.tools.registry import Tool, ToolDefinitionError, ToolError

DESCRIPTION = "Look up the value stored under a key in the table given to this run."

PARAMETERS = {
    "type": "object",
    "properties": {"key": {"type": "string", "description": "the key to look up"}},
    "required": ["key"],
    "additionalProperties": False,
}


class LookupTableError(ToolDefinitionError):
    """A lookup table that cannot be loaded: the message names the file and the place."""


def lookup_tool(table: Mapping[str, object] | str | Path | None = None) -> Tool:
    """The `lookup` tool over `table` (a dict or a .json/.csv path; None is an empty table)."""
    entries = load_table(table) if table is not None else {}

    def lookup(key: str) -> object:
        if key not in entries:
            if not entries:
                raise ToolError(f"no key {key!r}: the lookup table is empty")
            raise ToolError(f"no key {key!r} in the lookup table ({len(entries)} keys)")
        return entries[key]

    return Tool("lookup", DESCRIPTION, PARAMETERS, lookup)


def load_table(source: Mapping[str, object] | str | Path) -> dict[str, object]:
    """Load a lookup table from a dict, a JSON file or a CSV file."""
    if isinstance(source, Mapping):
        return _checked(dict(source), "the lookup table")
    path = Path(source)
    if not path.is_file():
        raise LookupTableError(f"lookup table {str(path)!r} is not a file")
    if path.suffix.lower() == ".json":
        return _load_json(path)
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    raise LookupTableError(
        f"lookup table {str(path)!r} has suffix {path.suffix!r}; allowed: '.json', '.csv'"
    )


def _load_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise LookupTableError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise LookupTableError(
            f"{path}: a JSON lookup table must be one object of key: value, "
            f"got {type(data).__name__}"
        )
    return _checked(data, str(path))


def _load_csv(path: Path) -> dict[str, object]:
    table: dict[str, object] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if not row or row == [""]:
                continue
            if line_no == 1 and [c.strip().lower() for c in row] == ["key", "value"]:
                continue
            if len(row) != 2:
                raise LookupTableError(
                    f"{path}:{line_no}: a row must have 2 columns (key,value), got {len(row)}"
                )
            key, value = row
            if key in table:
                raise LookupTableError(f"{path}:{line_no}: key {key!r} appears twice")
            table[key] = value
    return table


def _checked(table: dict, where: str) -> dict[str, object]:
    for key, value in table.items():
        if not isinstance(key, str):
            raise LookupTableError(
                f"{where}: key {key!r} has type {type(key).__name__}; keys must be str"
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise LookupTableError(f"{where}: the value of key {key!r} is not JSON: {e}") from None
    return table
