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
        (["follow 3 hops from a"], "error: task 'follow 3 hops from a' follows a lookup chain but no table"),
        (["(17+25"], "error: expression '(17+25': at character 6"),
        (["follow 0 hops from a"], "N must be >= 1"),
        (["1/2"], "error: expression '1/2': only digits, + - * ( ) and spaces are allowed, got '/'"),
        (["(" * 30 + "1" + ")" * 30], "parentheses nest 30 deep, and this model writes at most 24 levels"),
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


def test_a_task_outside_the_models_families_is_warned_about_and_still_run(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="thread"):
        result = Session("thread-tiny").solve("hello there", max_new_tokens=3, trace=tmp_path / "t.jsonl")
    assert result.status == "max_tokens"
    assert "fits none of the families this model was trained on" in caplog.text


@pytest.mark.parametrize(
    ("task", "warning"),
    [
        ("follow 3 hops from a", "key 'a' has 1 characters; this model was trained on keys of 2 to 8"),
        ("follow 2000 hops from ab", "2000 hops is more than the 1500 this model was trained on"),
        ("+".join(["1"] * 14), "13 operations is more than the 12 this model was trained on"),
    ],
)
def test_a_task_outside_the_trained_range_is_warned_about(task, warning, caplog):
    from thread.solve import _family_table

    config = {"families": {
        "arith": {"max_ops_trained": 12},
        "chain": {"max_hops_trained": 1500, "key_lengths_trained": [2, 8]},
    }}
    with caplog.at_level("WARNING", logger="thread"):
        _family_table(task, {"a": "b"}, None, config)
    assert warning in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="thread"):
        _family_table("follow 3 hops from ab", {"ab": "cd"}, None, config)
    assert caplog.text == ""


def test_an_expression_is_given_its_tape_table_and_another_table_is_refused():
    from thread.solve import _family_table

    config = {"families": {"arith": {"format": "tape"}}}
    assert _family_table(" 1 + 23", None, None, config) == {"0": "1", "1": "+", "2": "23", "3": ")"}
    assert _family_table("1+2", {"0": "1", "1": "+", "2": "2", "3": ")"}, None, config)["3"] == ")"
    with pytest.raises(ValueError, match="reads from a table of its own tokens"):
        _family_table("1+2", {"a": "b"}, None, config)
    # a model whose arith family is not read from a tape keeps the table it is given
    assert _family_table("1+2", None, None, {"families": {"arith": {}}}) is None


def test_a_family_task_gets_a_decode_cap_that_fits_its_whole_document():
    from thread.solve import _family_token_cap

    config = {"families": {"arith": {"format": "tape"}, "chain": {}}}
    assert _family_token_cap("follow 1000 hops from ab", config) == 64 * 1000 + 1024  # > 4096
    assert _family_token_cap("(1+2)", config) == 128 * 6 + 1024  # five tokens and the closing `)`
    assert _family_token_cap("hello", config) is None
    assert _family_token_cap("1/2", config) is None  # refused before decoding anyway
    assert _family_token_cap("follow 9 hops from ab", {}) is None


def test_an_interrupted_solve_names_its_trace_and_exits_130(tmp_path, monkeypatch):
    def interrupt(self, task, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(Session, "solve", interrupt)
    trace = tmp_path / "t.jsonl"
    result = CliRunner().invoke(app, ["solve", "--trace", str(trace), "1+2"])
    assert result.exit_code == 130, result.output
    assert f"interrupted: the run so far is in {trace}" in result.output.replace("\n", "")
