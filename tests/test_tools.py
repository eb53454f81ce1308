"""The tool registry, Python tools and the lookup tool: faults become results, never raises."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from thread.tools import (
    LookupTableError,
    Tool,
    ToolDefinitionError,
    ToolError,
    ToolRegistry,
    builtin_tools,
    load_table,
    lookup_tool,
    tool,
)
from thread.tools.registry import truncate_result


@tool
def scale(value: float, factor: int = 2, tags: list[str] | None = None) -> float:
    """Multiply a value by a factor.

    Longer text that is not part of the description.
    """
    return value * factor


def registry(*tools: Tool, **kwargs: object) -> ToolRegistry:
    return ToolRegistry([scale, *tools], **kwargs)


# 1) Python tools and their schemas


def test_tool_decorator_derives_schema_from_hints() -> None:
    assert scale.name == "scale"
    assert scale.description == "Multiply a value by a factor."
    assert scale.parameters == {
        "type": "object",
        "properties": {
            "value": {"type": "number"},
            "factor": {"type": "integer"},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        },
        "required": ["value"],
        "additionalProperties": False,
    }
    assert scale(value=1.5) == 3.0


def test_tool_decorator_takes_name_description_and_schema() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}

    @tool(name="echo", description="Say it back.", schema=schema)
    def f(**kwargs: object) -> object:
        return kwargs

    assert f.declaration() == {"name": "echo", "description": "Say it back.", "parameters": schema}


def test_dict_hint_gives_object_schema() -> None:
    @tool
    def count(items: dict[str, int], flag: bool) -> int:
        return len(items)

    assert count.parameters["properties"] == {
        "items": {"type": "object", "additionalProperties": {"type": "integer"}},
        "flag": {"type": "boolean"},
    }


def no_hint(x):
    pass


def set_hint(x: set) -> None:
    pass


def var_args(*xs: int) -> None:
    pass


def int_keys(x: dict[int, int]) -> None:
    pass


@pytest.mark.parametrize(
    "fn, message",
    [
        (no_hint, "parameter 'x' has no type hint"),
        (set_hint, "type <class 'set'> has no derived schema"),
        (var_args, "parameter 'xs' must be a plain or keyword parameter"),
        (int_keys, "dict keys must be str"),
    ],
)
def test_tool_decorator_refuses_hints_it_cannot_describe(fn: object, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        tool(fn)


@pytest.mark.parametrize(
    "name, parameters, message",
    [
        ("bad name", {"type": "object"}, "tool name 'bad name' is invalid"),
        ("t", {"type": "string"}, "parameters schema must have type 'object', got 'string'"),
        ("t", {"type": "object", "properties": 3}, "invalid parameters schema"),
    ],
)
def test_tool_definition_is_validated(name: str, parameters: dict, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        Tool(name, "", parameters, lambda: None)


# 2) the registry


def test_registry_lists_names_and_declarations_in_order() -> None:
    r = builtin_tools()
    assert r.names() == ["calculator", "lookup"]
    assert [d["name"] for d in r.declarations()] == ["calculator", "lookup"]
    assert "calculator" in r and len(r) == 2
    assert r.get("lookup").name == "lookup"


def test_registering_a_name_twice_is_refused_unless_replacing() -> None:
    r = registry()
    with pytest.raises(ToolDefinitionError, match="'scale' is already registered"):
        r.register(scale)
    r.register(scale, replace=True)
    assert r.names() == ["scale"]


def test_call_returns_result_and_timing() -> None:
    outcome = registry().call("scale", {"value": 2.5, "factor": 4})
    assert (outcome.result, outcome.error, outcome.truncated) == (10.0, None, False)
    assert outcome.seconds >= 0
    assert json.loads(json.dumps(outcome.to_json()))["arguments"] == {"value": 2.5, "factor": 4}


def test_unknown_tool_is_an_error_result_naming_the_known_ones() -> None:
    outcome = builtin_tools().call("search", {"q": "x"})
    assert outcome.result == {"error": "unknown tool 'search'; known tools: calculator, lookup"}
    assert outcome.error == outcome.result["error"]


@pytest.mark.parametrize("name", [5, ["calculator"], {"a": 1}, None])
def test_tool_name_that_is_not_a_string_is_an_error_result(name: object) -> None:
    outcome = builtin_tools().call(name, {"expression": "1"})
    assert outcome.error.startswith("the tool name must be a string, got ")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"value": "big"}, "at parameters.value: 'big' is not of type 'number'"),
        ({}, "at parameters: 'value' is a required property"),
        ({"value": 1, "extra": 0}, "('extra' was unexpected)"),
        ({"value": 1, "tags": ["a", 7]}, "at parameters.tags[1]: 7 is not of type 'string'"),
        ([1, 2], "at parameters: [1, 2] is not of type 'object'"),
    ],
)
def test_arguments_failing_the_schema_are_an_error_result(arguments: object, message: str) -> None:
    outcome = registry().call("scale", arguments)
    assert outcome.error.startswith("invalid parameters for tool 'scale'")
    assert message in outcome.error
    assert outcome.result == {"error": outcome.error}


def test_exception_in_tool_is_an_error_result_with_type_and_message() -> None:
    @tool
    def broken(x: int) -> int:
        raise KeyError("gone")

    assert registry(broken).call("broken", {"x": 1}).result == {"error": "KeyError: 'gone'"}


def test_tool_error_message_is_the_result_verbatim() -> None:
    @tool
    def picky(x: int) -> int:
        raise ToolError("x must be even")

    assert registry(picky).call("picky", {"x": 1}).result == {"error": "x must be even"}


@pytest.mark.parametrize("value", [{1, 2}, float("nan"), object()])
def test_result_that_is_not_json_is_an_error_result(value: object) -> None:
    odd = Tool("odd", "", {"type": "object"}, lambda: value)
    outcome = registry(odd).call("odd", {})
    assert outcome.error.startswith("tool 'odd' returned a value that is not JSON")


def test_slow_tool_times_out_and_the_run_goes_on() -> None:
    release = threading.Event()
    slow = Tool("slow", "", {"type": "object"}, lambda: release.wait(5))
    try:
        start = time.perf_counter()
        outcome = registry(slow).call("slow", {}, timeout_s=0.1)
        assert time.perf_counter() - start < 2
        assert outcome.result == {"error": "tool 'slow' did not finish within 0.1 s"}
    finally:
        release.set()


def test_tool_declared_timeout_overrides_the_call_default() -> None:
    release = threading.Event()
    slow = Tool("slow", "", {"type": "object"}, lambda: release.wait(5), timeout_s=0.05)
    try:
        outcome = registry(slow, timeout_s=30).call("slow", {})
        assert outcome.error == "tool 'slow' did not finish within 0.05 s"
    finally:
        release.set()


# 3) oversized results


def test_oversized_string_result_keeps_its_head_and_a_marker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    long = Tool("long", "", {"type": "object"}, lambda: "x" * 5000)
    with caplog.at_level(logging.WARNING, logger="thread.tools.registry"):
        outcome = registry(long).call("long", {}, max_result_chars=100)
    assert outcome.truncated and outcome.error is None
    assert len(outcome.text) == 100
    kept = outcome.result.index("…")
    assert outcome.result == "x" * kept + f"…[truncated {5000 - kept} chars]"
    assert "tool long result cut to 100 chars" in caplog.text


def test_oversized_structured_result_becomes_a_string_of_its_json_head() -> None:
    value = {"rows": list(range(1000))}
    result, dropped = truncate_result(value, 60)
    text = json.dumps(value)
    assert isinstance(result, str) and len(json.dumps(result, ensure_ascii=False)) <= 60
    assert result == text[: len(text) - dropped] + f"…[truncated {dropped} chars]"


def test_oversized_error_keeps_the_error_shape() -> None:
    result, dropped = truncate_result({"error": "e" * 500}, 80)
    assert set(result) == {"error"} and dropped > 0
    assert result["error"].endswith(f"…[truncated {dropped} chars]")
    assert len(json.dumps(result, ensure_ascii=False)) <= 80


def test_result_within_limit_is_untouched() -> None:
    assert truncate_result([1, 2, 3], 9) == ([1, 2, 3], 0)


# 4) the lookup tool


def test_lookup_returns_value_as_is() -> None:
    r = builtin_tools({"k1": "v1", "n": 3, "obj": {"a": [1]}})
    assert r.call("lookup", {"key": "k1"}).text == '"v1"'
    assert r.call("lookup", {"key": "n"}).result == 3
    assert r.call("lookup", {"key": "obj"}).result == {"a": [1]}


def test_lookup_missing_key_names_the_key_not_the_table() -> None:
    outcome = builtin_tools({"secret-key": "secret-value"}).call("lookup", {"key": "k9"})
    assert outcome.result == {"error": "no key 'k9' in the lookup table (1 keys)"}
    assert "secret" not in outcome.error


def test_lookup_without_a_table_says_it_is_empty() -> None:
    assert (
        builtin_tools().call("lookup", {"key": "a"}).error
        == "no key 'a': the lookup table is empty"
    )


def test_lookup_table_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"a": "b", "c": 1}))
    assert load_table(path) == {"a": "b", "c": 1}
    assert lookup_tool(str(path))(key="c") == 1


@pytest.mark.parametrize("header", ["", "key,value\n", "Key, Value\n"])
def test_lookup_table_from_csv_file_header_optional(tmp_path: Path, header: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(header + 'a,1\n"b,c",x y\n\n')
    assert load_table(path) == {"a": "1", "b,c": "x y"}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("t.csv", "a,1\nb,2,3\n", "t.csv:2: a row must have 2 columns (key,value), got 3"),
        ("t.csv", "a,1\na,2\n", "t.csv:2: key 'a' appears twice"),
        ("t.json", '{"a": 1,\n "b"}', "t.json:2:5: invalid JSON"),
        ("t.json", "[1, 2]", "a JSON lookup table must be one object of key: value, got list"),
        ("t.txt", "a=1", "has suffix '.txt'; allowed: '.json', '.csv'"),
    ],
)
def test_bad_lookup_table_file_names_the_place(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LookupTableError) as e:
        load_table(path)
    assert message in str(e.value)


def test_bad_lookup_table_dict_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LookupTableError, match="key 3 has type int; keys must be str"):
        load_table({3: "x"})
    with pytest.raises(LookupTableError, match="the value of key 'a' is not JSON"):
        load_table({"a": {1, 2}})
    with pytest.raises(LookupTableError, match="is not a file"):
        load_table(tmp_path / "missing.csv")
