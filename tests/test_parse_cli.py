"""`thread parse` as a user runs it: round trip, events, errors with positions, help."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from thread.cli import app

DOC = {
    "reasoning": [
        {
            "title": "Plan",
            "thought": "Split it: \"quoted\", back\\slash, tab\t, é, 中文, 🙂",
            "tooluse": {"tool_name": "lookup", "parameters": {"q": ["a", {"n": 1.5, "ok": True}]}, "tool_result": {"rows": [None, "x"]}},
            "subtasks": [{"thought": "inner", "subtasks": [{"conclusion": "deepest"}]}],
            "conclusion": "ok",
        }
    ],
    "answer": "42",
}
runner = CliRunner()


def run(args: list[str], text: str):
    return runner.invoke(app, ["parse", *args], input=text)


def test_parse_prints_the_same_document(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(DOC, indent=3, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["parse", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == DOC


def test_parse_reads_stdin_with_ascii_escapes():
    result = run(["-"], json.dumps(DOC))
    assert result.exit_code == 0 and json.loads(result.stdout) == DOC


def test_events_are_json_lines():
    result = run(["--events"], json.dumps(DOC))
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds[-1] == "done" and kinds.count("node_open") == kinds.count("node_close") == 3
    ready = next(e for e in events if e["kind"] == "tool_ready")
    assert ready["value"] == {"name": "lookup", "parameters": DOC["reasoning"][0]["tooluse"]["parameters"]}


def test_malformed_input_reports_line_column_and_exits_2():
    text = '{"reasoning": [\n  {"thought": "a", "conclusion": "b", "title": "c"}\n], "answer": "x"}'
    result = run([], text)
    assert result.exit_code == 2
    assert result.stderr.strip() == "2:37: unexpected ','; expected '}'"
    assert json.loads(result.stdout) == {"reasoning": [{"thought": "a", "conclusion": "b"}]}


def test_truncated_input_prints_the_partial_tree_and_exits_2():
    text = json.dumps(DOC)[:120]
    result = run([], text)
    assert result.exit_code == 2
    assert "unexpected end of input" in result.stderr
    partial = json.loads(result.stdout)
    assert partial["reasoning"][0]["title"] == "Plan"


def test_help_explains_commands():
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "parse" in top.stdout
    sub = runner.invoke(app, ["parse", "--help"])
    assert sub.exit_code == 0
    for word in ("--events", "--format", "LINE:COLUMN"):
        assert word in sub.stdout


def test_unknown_format_is_a_usage_error():
    result = run(["--format", "nosuch"], "{}")
    assert result.exit_code == 2 and "nosuch" in result.output
