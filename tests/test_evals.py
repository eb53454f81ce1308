"""Eval runs: a long horizon gets room for its whole document; summaries add up ledgers."""

from __future__ import annotations

import json
from types import SimpleNamespace

from thread.evals import run_one, summarize, sum_ledgers
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
