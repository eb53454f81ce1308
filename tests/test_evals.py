"""Eval runs: a long horizon gets room for its whole document; summaries add up ledgers."""

from __future__ import annotations

import json
from types import SimpleNamespace

from thread.evals import plot, run_one, summarize, sum_ledgers
from thread.ledger import Ledger
from thread.tasks import make


def _ledger(decoded: int, reads: int, unpruned: int, peak: int) -> dict:
    ledger = Ledger()
    ledger.decoded, ledger.attention_reads, ledger.unpruned_reads, ledger.peak_live = decoded, reads, unpruned, peak
    ledger.phase_seconds["decode"] = 1.5
    return ledger.to_json()


def test_sum_ledgers_adds_counts_and_recomputes_ratios() -> None:
    total = sum_ledgers([_ledger(10, 100, 200, 30), _ledger(30, 900, 1800, 50)])
    assert total["decoded"] == 40 and total["attention_reads"] == 1000 and total["unpruned_reads"] == 2000
    assert total["peak_live"] == 50
    assert total["mean_live"] == 25.0  # 1000 reads over 40 steps, not 10 + 30
    assert total["reads_saved"] == 0.5  # not 0.5 + 0.5
    assert total["phase_seconds"] == {"decode": 3.0}
    assert "per_subtask" not in total


def test_summarize_groups_by_suite_size_and_pruning() -> None:
    rows = [
        {"suite": "s", "size": 2, "pruning": p, "correct": c, "status": "done", "peak_live": 5, "mean_live": 4.0,
         "trace_tokens": 9, "seconds": 1.0, "ledger": _ledger(1, 4, 8, 5)}
        for p, c in ((True, True), (True, False), (False, True))
    ]
    out = summarize(rows)
    assert [(r["pruning"], r["n"], r["accuracy"]) for r in out] == [(True, 2, 0.5), (False, 1, 1.0)]
    assert out[0]["ledger"]["reads_saved"] == 0.5


def test_a_thousand_hops_are_not_cut_by_the_default_token_cap():
    instance = make("chain", 1000, 0)
    asked: dict = {}

    class Session:
        def solve(self, text, **kwargs):
            asked.update(kwargs, text=text)
            return SimpleNamespace(answer=instance.answer, status="done", ledger=_ledger(10, 40, 80, 7))

    row = run_one(Session(), instance, rules="window", budget=None, trace=None)
    assert asked["text"] == "follow 1000 hops from " + instance.document["reasoning"][0]["subtasks"][0]["tooluse"]["parameters"]["key"]
    assert asked["max_new_tokens"] == len(json.dumps(instance.document)) + 256 > 4096
    assert row["correct"] and row["peak_live"] == 7


def test_the_plot_is_a_png_of_both_panels(tmp_path):
    rows = [
        {"suite": "chain-small", "size": size, "pruning": on, "accuracy": acc, "peak_live": peak, "trace_tokens": 25 * size}
        for size, on, acc, peak in [(10, True, 1.0, 100), (30, True, 1.0, 131), (10, False, 0.0, 1003), (30, False, 0.0, 600)]
    ]
    plot(rows, tmp_path / "plot.png", context_window=1024)
    data = (tmp_path / "plot.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1100  # 10 in at 110 dpi


def test_eval_command_writes_each_solve_and_its_trace_as_it_goes(tmp_path):
    from typer.testing import CliRunner

    from thread.cli import app

    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app, ["eval", "chain-small", "--sizes", "1", "--seeds", "2", "--pruning", "on", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["size"], r["seed"], r["pruning"]) for r in rows] == [(1, 0, True), (1, 1, True)]
    assert sorted(p.name for p in (out / "traces").iterdir()) == [
        "chain-1-0-window.jsonl", "chain-1-1-window.jsonl"
    ]
    assert json.loads((out / "results.json").read_text()) == rows
    assert "thread eval" in result.output and "exact" in result.output
