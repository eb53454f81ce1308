"""The ledger counts a solve's costs exactly, from the hooks the runtime calls."""

from __future__ import annotations

import json

import pytest

from thread.ledger import Ledger, SubtaskCost


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_small_solve(ledger: Ledger, clock: FakeClock) -> None:
    """A scripted solve: prefill 10, decode 4, a tool writes 3, a prune frees 5, decode 2."""
    with ledger.phase("prefill"):
        ledger.on_prefill(10, live=10)
        clock.now += 0.5
    with ledger.phase("decode"):
        for live in (11, 12, 13, 14):
            ledger.on_decode(live, unpruned_live=live)
        clock.now += 1.0
    with ledger.phase("tool"):
        ledger.on_tool(3)
        clock.now += 0.25
    ledger.on_prune(freed=5, reencoded=2)
    ledger.on_subtask_closed("0.0", tokens=4, seconds=1.0)
    with ledger.phase("decode"):
        for live, unpruned in ((13, 18), (14, 19)):
            ledger.on_decode(live, unpruned)
        clock.now += 0.5
    ledger.on_subtask_closed("0", tokens=6, seconds=2.0)


@pytest.fixture
def solved() -> Ledger:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    run_small_solve(ledger, clock)
    return ledger


def test_token_counts(solved: Ledger) -> None:
    assert (solved.prefilled, solved.decoded, solved.tool_tokens) == (10, 6, 3)
    assert (solved.pruned, solved.reencoded) == (5, 2)
    assert solved.computed == 10 + 6 + 2 + 3


def test_live_sizes_and_attention_reads(solved: Ledger) -> None:
    assert solved.peak_live == 14
    assert solved.attention_reads == 11 + 12 + 13 + 14 + 13 + 14
    assert solved.unpruned_reads == 11 + 12 + 13 + 14 + 18 + 19
    assert solved.mean_live == 77 / 6
    assert solved.reads_saved == pytest.approx(1 - 77 / 87)


def test_phases_accumulate_wall_time(solved: Ledger) -> None:
    assert solved.phase_seconds == {"prefill": 0.5, "decode": 1.5, "tool": 0.25}


def test_phase_time_is_counted_when_the_body_raises() -> None:
    clock = FakeClock()
    ledger = Ledger(clock=clock)
    with pytest.raises(KeyboardInterrupt), ledger.phase("decode"):
        clock.now += 2.0
        raise KeyboardInterrupt
    assert ledger.phase_seconds == {"decode": 2.0}


def test_cost_per_finished_subtask(solved: Ledger) -> None:
    assert solved.subtasks == {"0.0": SubtaskCost(4, 1.0), "0": SubtaskCost(6, 2.0)}
    assert solved.subtask_means() == {"tokens": 5.0, "seconds": 1.5}


def test_to_json_is_plain_json(solved: Ledger) -> None:
    data = json.loads(json.dumps(solved.to_json()))
    assert data["subtasks"] == {
        "0.0": {"tokens": 4, "seconds": 1.0},
        "0": {"tokens": 6, "seconds": 2.0},
    }
    assert data["num_subtasks"] == 2 and data["per_subtask"] == {"tokens": 5.0, "seconds": 1.5}
    assert data["attention_reads"] == 77 and data["unpruned_reads"] == 87
    assert data["computed"] == 21 and "clock" not in data


def test_empty_ledger_has_zero_means() -> None:
    ledger = Ledger()
    assert (ledger.mean_live, ledger.reads_saved) == (0.0, 0.0)
    assert ledger.to_json()["per_subtask"] == {"tokens": 0.0, "seconds": 0.0}


def test_prefill_raises_peak_live() -> None:
    ledger = Ledger()
    ledger.on_prefill(50, live=50)
    ledger.on_decode(20, 51)
    assert ledger.peak_live == 50


def test_hooks_reject_impossible_counts() -> None:
    ledger = Ledger()
    with pytest.raises(AssertionError, match="live=5 unpruned_live=4"):
        ledger.on_decode(5, 4)
    ledger.on_subtask_closed("1", 3, 0.1)
    with pytest.raises(AssertionError, match="closed twice"):
        ledger.on_subtask_closed("1", 3, 0.1)


def test_forced_tokens_are_counted_as_computed() -> None:
    ledger = Ledger()
    ledger.on_prefill(4, 4)
    ledger.on_decode(5, 5)
    ledger.on_forced(3)
    assert ledger.forced == 3 and ledger.computed == 4 + 1 + 3
    assert ledger.to_json()["forced"] == 3


def test_the_live_size_a_prune_cuts_is_a_peak() -> None:
    ledger = Ledger()
    ledger.on_prefill(4, 4)
    ledger.on_decode(6, 6)
    ledger.on_prune(5, 0, live_before=9)  # forced and tool tokens grew the live size to 9
    assert ledger.peak_live == 9 and ledger.pruned == 5
