"""Reading traces back: replay at a step, the rebuilt tree, the ledger, crashed and bad files."""

from __future__ import annotations

import json

import pytest
from trace_fixtures import PROMPT, many_tasks, write_trace, write_truncated

from thread.report import PrunedRun, TraceError, ledger_rows, load_trace
from thread.report.reader import recompute_ledger

TASK = "((17+25)*2)"
HEAD = PROMPT.format(task=TASK) + '{"reasoning": [{"thought": "add 17 and 25, then double", '
LEAF_0 = (
    '{"thought": "17+25", "tooluse": {"tool_name": "calculator", '
    '"parameters": {"expression": "17+25"}, "tool_result": "42"}, "conclusion": "42"}'
)


@pytest.fixture
def trace(tmp_path):
    return load_trace(write_trace(tmp_path / "run.jsonl"))


def recorded_live(trace, step):
    return [live for s, live in trace.live_series() if s <= step][-1]


def test_replay_at_prefill_is_the_prompt(trace):
    context = trace.live_at(0)
    assert context.text() == PROMPT.format(task=TASK)
    assert context.num_live == trace.num_prompt == 53 and context.num_pruned == 0


def test_replay_right_after_the_tool_call_ends_with_its_result(trace):
    tool = trace.tools[0]
    text = trace.live_at(tool.step).text()
    assert text == HEAD + '"subtasks": [' + LEAF_0[: LEAF_0.index(', "conclusion"') - 1]


def test_replay_at_first_prune_shows_one_marker_for_the_collapsed_subtasks(trace):
    first = trace.prunes[0]
    assert (first.node, first.step, first.freed) == ("0.1", 156, 33)
    before = trace.live_at(first.step - 1).text()
    assert "⟦" not in before and before.endswith('"conclusion": "84"')
    assert trace.live_at(first.step).text() == (
        HEAD + '"subtasks": [' + LEAF_0 + ', {"thought": "double 42", '
        '⟦pruned 33 tokens: task 0.1 at step 156⟧"conclusion": "84"}'
    )


def test_consecutive_pruned_runs_merge_under_the_latest_prune(trace):
    context = trace.live_at(trace.last_step)
    markers = [p for p in context.pieces if isinstance(p, PrunedRun)]
    assert len(markers) == 1
    assert markers[0].num_tokens == 33 + 109 and markers[0].prune.node == "0"
    assert context.text() == (
        HEAD + '⟦pruned 142 tokens: task 0 at step 169⟧"conclusion": "84"}], "answer": "84"}'
    )
    assert context.text(markers=False).endswith('double", "conclusion": "84"}], "answer": "84"}')


@pytest.mark.parametrize("num_tasks", [1, 4])
def test_replay_size_matches_the_live_size_the_runtime_recorded_at_every_step(tmp_path, num_tasks):
    trace = load_trace(write_trace(tmp_path / "run.jsonl", many_tasks(num_tasks)))
    for step in range(trace.last_step + 1):
        context = trace.live_at(step)
        assert context.num_live == recorded_live(trace, step), f"{step=}"
        assert len(context.indices) == len(set(context.indices)) == context.num_live


def test_replay_token_ids_are_the_live_transcript_entries(trace):
    context = trace.live_at(trace.last_step)
    assert context.token_ids == [trace.tokens[i].id for i in context.indices]
    assert all(trace.pruned_by[i] == -1 for i in context.indices)


def test_step_outside_the_trace_is_refused_naming_the_range(trace):
    with pytest.raises(TraceError, match=r"step 999 is outside the trace's steps 0\.\.182"):
        trace.live_at(999)
    with pytest.raises(TraceError, match="step -1"):
        trace.live_at(-1)


def test_tree_rebuilds_paths_fields_and_the_tool_call(trace):
    root = trace.tree()
    assert [n.path for n in root.walk()] == ["", "0", "0.0", "0.1", "0.1.0"]
    assert root.fields["answer"] == "84"
    nodes = {n.path: n for n in root.walk()}
    assert nodes["0"].label == "add 17 and 25, then double"
    assert nodes["0.0"].tool.name == "calculator" and nodes["0.0"].tool.result == "42"
    assert nodes["0.0"].tool.arguments == {"expression": "17+25"}
    assert all(n.is_closed for n in root.walk())


def test_tree_names_the_prune_that_removed_each_node_and_field(trace):
    nodes = {n.path: n for n in trace.tree().walk()}
    first, second = trace.prunes
    assert nodes["0.1.0"].pruned is first
    assert nodes["0.1"].pruned_fields["subtasks"] is first and nodes["0.1"].pruned is second
    assert nodes["0.0"].pruned is second
    assert nodes["0"].pruned is None and nodes["0"].pruned_fields == {"subtasks": second}
    assert "thought" not in nodes["0"].pruned_fields
    assert nodes["0"].named_by == [second] and nodes["0.1"].named_by == [first]


def test_ledger_comes_from_the_end_line_and_the_recount_agrees(trace):
    ledger, is_partial = trace.ledger()
    assert not is_partial and ledger["decoded"] == 182
    recount = recompute_ledger(trace)
    for key in ("prefilled", "decoded", "reencoded", "tool_tokens", "pruned", "peak_live"):
        assert recount[key] == ledger[key], key


def test_ledger_rows_flatten_small_dicts_and_count_per_item_maps(trace):
    rows = dict(ledger_rows(trace.ledger()[0]))
    assert rows["phase_seconds.tool"] == 0.0004
    assert rows["subtasks"] == "4 entries"
    assert rows["per_subtask.tokens"] == 30.0


def test_truncated_trace_reads_up_to_its_last_whole_line(tmp_path):
    path = write_truncated(tmp_path / "crash.jsonl")
    last_whole = json.loads(path.read_text().splitlines()[-2])
    trace = load_trace(path)
    assert trace.is_truncated and trace.end is None and trace.status == "incomplete"
    assert trace.last_step == last_whole["step"] > trace.tools[0].step
    ledger, is_partial = trace.ledger()
    assert is_partial and ledger["steps"] == trace.last_step and ledger["tool_calls"] == 1
    context = trace.live_at(trace.last_step)
    assert context.num_live == recorded_live(trace, trace.last_step)
    nodes = {n.path: n for n in trace.tree().walk()}
    assert not nodes["0"].is_closed and nodes["0.0"].is_closed and not nodes["0.1"].is_closed
    assert nodes["0.1"].pruned is None


def test_trace_without_end_line_but_whole_lines_is_incomplete_not_truncated(tmp_path):
    path = write_trace(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    trace = load_trace(path)
    assert trace.status == "incomplete" and not trace.is_truncated
    assert trace.live_at(trace.last_step).num_live == 104


def test_budget_stop_ends_at_its_last_step(tmp_path):
    trace = load_trace(write_trace(tmp_path / "run.jsonl", status="budget", stop_at_step=120))
    assert trace.status == "budget" and trace.last_step == 120
    assert trace.live_at(120).num_live == recorded_live(trace, 120)


def test_a_bad_line_in_the_middle_names_file_and_line(tmp_path):
    path = write_trace(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = "{not json\n"
    path.write_text("".join(lines))
    with pytest.raises(TraceError, match=r"run\.jsonl:5: not a JSON line"):
        load_trace(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"kind": "token", "step": 1, "id": 5, "text": "x", "index": 99}, "token index 99, expected 53"),
        ({"kind": "token", "step": 1, "index": 53, "text": "x"}, "'token' line has no 'id' key"),
        ({"kind": "drop", "step": 1, "index": 7}, "drop of index 7"),
        ({"kind": "prune", "step": 1, "spans": [3]}, "prune 'spans' must be"),
        ({"step": 1}, "no 'kind' key"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_lines_that_break_the_contract_are_refused(tmp_path, line, message):
    path = write_trace(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, json.dumps(line) + "\n")
    path.write_text("".join(lines))
    with pytest.raises(TraceError, match=f"run.jsonl:3: .*{message}"):
        load_trace(path)


def test_unknown_line_kinds_are_skipped(tmp_path):
    path = write_trace(tmp_path / "run.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, json.dumps({"kind": "gpu_stats", "step": 0, "memory": 1}) + "\n")
    path.write_text("".join(lines))
    assert load_trace(path).live_at(0).num_live == 53


def test_missing_and_empty_files_are_refused(tmp_path):
    with pytest.raises(TraceError, match="cannot read trace"):
        load_trace(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(TraceError, match="not a thread trace"):
        load_trace(tmp_path / "empty.jsonl")


class _CharTokenizer:
    """One token per character (id = code point): no token straddles a span edge."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


def test_reads_a_trace_written_by_the_runtime_controller(tmp_path):
    from thread.controller import Controller, Prune
    from thread.formats import load_format
    from thread.rules import load_rules
    from thread.tools import builtin_tools
    from thread.trace import TraceWriter

    # 1) the real writer: controller, parser, collapse rules and calculator, no model
    fmt = load_format("thread2")
    writer = TraceWriter(tmp_path / "real.jsonl")
    controller = Controller(fmt, load_rules("collapse", fmt), _CharTokenizer(), tools=builtin_tools(), trace=writer)
    controller.start(_CharTokenizer().encode("Task: (17+25)*2\n"))
    model_text = (
        '{"reasoning": [{"thought": "double the sum", "subtasks": [{"thought": "17+25", "tooluse": '
        '{"tool_name": "calculator", "parameters": {"expression": "17+25"}',
        '}, "conclusion": "42"}, {"thought": "42*2", "subtasks": [{"thought": "x2", "conclusion": "84"}], '
        '"conclusion": "84"}], "conclusion": "84"}], "answer": "84"}',
    )
    for char in "".join(model_text):
        controller.advance()
        for action in controller.on_tokens([ord(char)]):
            if isinstance(action, Prune):
                controller.applied_prune(action, freed=len(action.indices), reencoded=0, seconds=0.0)
    writer.close()

    # 2) the reader agrees with what the runtime recorded
    trace = load_trace(tmp_path / "real.jsonl")
    assert trace.status == "incomplete" and len(trace.tools) == 1 and len(trace.prunes) == 2
    for step in range(trace.last_step + 1):
        assert trace.live_at(step).num_live == recorded_live(trace, step), f"{step=}"
    nodes = {n.path: n for n in trace.tree().walk()}
    assert set(nodes) == {"", "0", "0.0", "0.1", "0.1.0"}
    assert nodes["0.0"].tool.result == 42 and nodes["0.1.0"].pruned is trace.prunes[0]
    assert nodes["0"].pruned_fields["subtasks"] is trace.prunes[1] and nodes["0"].pruned is None
    assert trace.live_at(trace.last_step).text() == (
        'Task: (17+25)*2\n{"reasoning": [{"thought": "double the sum", '
        f'⟦pruned {sum(p.freed for p in trace.prunes)} tokens: task 0 at step {trace.prunes[1].step}⟧'
        '"conclusion": "84"}], "answer": "84"}'
    )
