"""`thread solve` on the command line: bad options and files are one-line errors with exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from thread.cli import app
from thread.solve import Session


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "/nonexistent", "1+2"], "error: model '/nonexistent' is not a registry name"),
        (["--rules", "nosuch", "1+2"], "error: no rule set 'nosuch' for format 'thread2'"),
        (["--tool", "nosuch", "1+2"], "error: unknown tool 'nosuch'; known tools: calculator, lookup"),
        (["--table", "/nonexistent.json", "follow 3 hops from a"], "error: lookup table '/nonexistent.json'"),
        (["  "], "error: the task text is empty"),
        (["--device", "tpu", "1+2"], "error: device 'tpu'"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(app, ["solve", "--trace", str(tmp_path / "t.jsonl"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_max_new_tokens_zero_decodes_nothing(tmp_path):
    result = Session("thread-tiny").solve("1+2", max_new_tokens=0, trace=tmp_path / "t.jsonl")
    assert result.status == "max_tokens" and result.ledger["decoded"] == 0


def test_a_task_longer_than_the_models_window_stops_at_once_with_the_window_named(tmp_path):
    result = Session("thread-tiny").solve("1+" * 600 + "1", trace=tmp_path / "t.jsonl")
    assert result.status == "budget" and result.ledger["decoded"] == 0
    assert "over the budget max_live_tokens=1024" in result.message
