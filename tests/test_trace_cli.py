"""`thread trace show|replay|html`: the terminal rendering of a small known trace, and errors."""

from __future__ import annotations

import pytest
from rich.console import Console
from trace_fixtures import HOSTILE, small_tasks, write_trace, write_truncated
from typer.testing import CliRunner

from thread.cli import app
from thread.cli.trace_cmd import ledger_table, replay_view, shorten, tree_view
from thread.report import load_trace

TREE = """\
document
answer: 84
└── task 0  add 17 and 25, then double
    conclusion: 84
    subtasks pruned at step 169 (exact)
    ├── task 0.0  17+25
    │   tool: calculator {"expression": "17+25"} → 42
    │   conclusion: 42
    │   pruned at step 169 (exact)
    └── task 0.1  double 42
        conclusion: 84
        subtasks pruned at step 156 (exact)
        pruned at step 169 (exact)
        └── task 0.1.0  42*2
            conclusion: 84
            pruned at step 156 (exact)
"""


def render(renderable, width: int = 100) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def trace_path(tmp_path):
    return write_trace(tmp_path / "run.jsonl")


def test_tree_shows_each_node_with_tool_conclusion_and_prunes(trace_path):
    assert render(tree_view(load_trace(trace_path))) == TREE


def test_tree_of_a_crashed_run_marks_open_nodes(tmp_path):
    trace = load_trace(write_truncated(tmp_path / "crash.jsonl"))
    lines = render(tree_view(trace)).splitlines()
    assert lines[:2] == ["document", "└── task 0  add 17 and 25, then double"]
    assert lines[2] == "    still open when the trace ended"
    assert "    └── task 0.1" in lines and lines[-1] == "        still open when the trace ended"
    assert not any("pruned" in line for line in lines)


def test_ledger_table_lists_counts_and_says_when_recomputed(trace_path, tmp_path):
    text = render(ledger_table(load_trace(trace_path)))
    assert text.splitlines()[0].strip() == "Ledger"
    assert "│ decoded               │       182 │" in text
    assert "│ subtasks              │ 4 entries │" in text
    crashed = render(ledger_table(load_trace(write_truncated(tmp_path / "crash.jsonl"))))
    assert crashed.splitlines()[0].strip() == "Ledger, recomputed (the trace has no end line)"


def test_replay_view_has_a_header_with_the_live_size_then_the_text(trace_path):
    trace = load_trace(trace_path)
    lines = render(replay_view(trace.live_at(169), trace.last_step), width=200).splitlines()
    assert lines[0] == "step 169 of 182: 91 live tokens, 142 pruned"
    assert lines[1:6] == ["<|im_start|>system", "Answer as a Thread-2 task tree.<|im_end|>",
                          "<|im_start|>user", "((17+25)*2)<|im_end|>", "<|im_start|>assistant"]
    assert lines[6] == (
        '{"reasoning": [{"thought": "add 17 and 25, then double", '
        '⟦pruned 142 tokens: task 0 at step 169⟧"conclusion": "84"}'
    )


def test_model_text_is_never_read_as_rich_markup(tmp_path):
    trace = load_trace(write_trace(tmp_path / "run.jsonl", small_tasks("[bold]x[/bold] [red]y")))
    assert "task 0.1  [bold]x[/bold] [red]y" in render(tree_view(trace))


def test_shorten_keeps_one_line_within_the_limit():
    assert shorten("a\n b   c") == "a b c"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten({"k": [1, 2]}) == '{"k": [1, 2]}'


def test_cli_show_replay_and_html(trace_path, tmp_path):
    runner = CliRunner()
    shown = runner.invoke(app, ["trace", "show", str(trace_path)], terminal_width=120)
    assert shown.exit_code == 0, shown.output
    assert "run.jsonl: done, 182 steps, 2 prunes, model fixture-words, rules collapse" in shown.output
    assert "pruned at step 156 (exact)" in shown.output and "reads_saved" in shown.output

    replayed = runner.invoke(app, ["trace", "replay", str(trace_path), "--step", "156"], terminal_width=300)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.startswith("step 156 of 182: 187 live tokens, 33 pruned\n")
    assert "⟦pruned 33 tokens: task 0.1 at step 156⟧" in replayed.output

    page = tmp_path / "report.html"
    written = runner.invoke(app, ["trace", "html", str(trace_path), "-o", str(page)])
    assert written.exit_code == 0, written.output
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_cli_names_bad_input(trace_path, tmp_path):
    runner = CliRunner()
    late = runner.invoke(app, ["trace", "replay", str(trace_path), "--step", "500"])
    assert late.exit_code == 2 and "step 500 is outside the trace's steps 0..182" in late.output
    missing = runner.invoke(app, ["trace", "show", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "cannot read trace" in missing.output


def test_cli_renders_hostile_text_as_text(tmp_path):
    path = write_trace(tmp_path / "run.jsonl", small_tasks(HOSTILE), task_text=HOSTILE)
    shown = CliRunner().invoke(app, ["trace", "show", str(path)], terminal_width=200)
    assert shown.exit_code == 0 and "</script><script>" in shown.output


def test_cli_html_into_a_missing_folder_is_a_one_line_error(trace_path, tmp_path):
    page = tmp_path / "no" / "such" / "report.html"
    result = CliRunner().invoke(app, ["trace", "html", str(trace_path), "-o", str(page)], terminal_width=300)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: cannot write {page}: No such file or directory" in result.output
