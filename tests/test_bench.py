"""Benchmarks on tiny random-weight Llamas: the replays, the figures and `thread bench`.

Nothing here asserts a timing; the figures' ratios depend on the machine. What is checked is
that every mode writes the same tokens, that pruning bounds the live cache, and the JSON shape.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_tiny_llama
from typer.testing import CliRunner

from thread.bench import BenchError, BenchOptions, Figure, Goal, Target, parse_figures, run_bench
from thread.bench.horizons import greedy_agreement
from thread.bench.prune import filled_cache, restore, snapshot
from thread.bench.replays import (
    REPLAY_MODES,
    ReplayRun,
    auto_budget,
    dry_peak_live,
    instance_for,
    replay,
    replay_loop,
    trace_tokens,
)
from thread.cli import app
from thread.formats import load_format
from thread.tasks import make


@pytest.fixture(scope="module")
def target(smollm2_tokenizer) -> Target:
    """A random Llama whose output head is not tied to its input, so greedy picks follow context."""
    model = make_tiny_llama(len(smollm2_tokenizer), seed=1)
    torch.manual_seed(1)
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    eos = frozenset({smollm2_tokenizer.eos_token_id})
    return Target("tiny", model, smollm2_tokenizer, load_format("thread2"), {}, eos)


@pytest.fixture(scope="module")
def chain_runs(target) -> dict[str, ReplayRun]:
    """Every mode replaying one chain about four times the automatic budget."""
    budget = auto_budget(target, "chain", 0)
    instance = instance_for(target, "chain", 4 * budget, 0)
    return {mode: replay(target, instance, mode) for mode in REPLAY_MODES}


# 1) replays


def test_replay_writes_the_same_tokens_in_every_mode(chain_runs):
    first = chain_runs["none"]

    assert {r.status for r in chain_runs.values()} == {"done"}
    assert all(r.ids == first.ids for r in chain_runs.values())
    assert len(set(first.greedy)) > 1  # the model's picks depend on context: the check has teeth


def test_in_cache_exact_pruning_picks_what_a_fresh_prefill_picks(chain_runs):
    exact, reprefill = chain_runs["exact"], chain_runs["reprefill"]

    assert exact.num_prunes > 0 and exact.num_prunes == reprefill.num_prunes
    assert greedy_agreement(exact, reprefill) == 1.0


def test_pruned_replay_peak_live_stays_within_the_budget_and_below_unpruned(target, chain_runs):
    budget = auto_budget(target, "chain", 0)
    unpruned = chain_runs["none"].peak_live

    assert unpruned == chain_runs["none"].num_tokens
    for mode in ("exact", "shift", "reprefill"):
        assert chain_runs[mode].peak_live <= budget < unpruned, mode


def test_dry_peak_bounds_the_runtime_peak_from_above(target, chain_runs):
    instance = instance_for(target, "chain", chain_runs["exact"].num_tokens, 0)

    assert chain_runs["exact"].peak_live <= dry_peak_live(target, instance)


def test_reprefill_rebuilds_the_kept_context_in_a_fresh_cache(target):
    instance = make("chain", 10, 0)
    loop = replay_loop(target, instance, "reprefill")
    loop.run(target.tokenizer.encode(f"{instance.text}\n", add_special_tokens=False))
    ctl = loop.controller
    kept = [i for i, live in enumerate(ctl.is_live) if live]

    assert loop.num_prunes > 0 and loop.cache.prunes == []  # never pruned in place
    assert loop.cache.live_indices == kept
    assert loop.cache.live_positions == list(range(len(kept)))
    assert loop.num_reprefilled > loop.num_prunes


def test_instance_for_reaches_the_requested_trace_length(target):
    instance = instance_for(target, "chain", 700, 0)

    assert trace_tokens(target, instance) >= 700
    assert trace_tokens(target, make("chain", instance.size - 2, 0)) < 700


def test_peak_live_within_a_prefix_reads_the_live_curve():
    run = ReplayRun("exact", 1.0, 1.0, 9, 30, 2, 0, "done", live_curve=[(5, 5), (20, 9), (30, 7)])

    assert [run.peak_live_within(n) for n in (4, 5, 19, 20, 30)] == [0, 5, 5, 9, 9]


# 2) figures and options


def test_p4_restores_the_cache_after_each_timed_prune(target):
    cache = filled_cache(target, list(range(100, 160)))
    saved = snapshot(cache)
    keys = cache.cache.layers[0].keys.clone()

    cache.prune(range(10, 40), "shift")
    restore(cache, saved)

    assert cache.live_indices == list(range(60)) and cache.live_positions == list(range(60))
    assert torch.equal(cache.cache.layers[0].keys, keys)


def test_prune_figures_cover_every_fraction_in_both_modes(target):
    options = BenchOptions(runs=1, cache_tokens=120, fractions=(0.1, 0.9), budget=32)
    figures = run_bench(target, options, only=("P4",))

    names = [f.name for f in figures]
    assert names[:4] == [
        "prune 10% of 120 (shift) / decode step",
        "prune 10% of 120 (exact) / decode step",
        "prune 90% of 120 (shift) / decode step",
        "prune 90% of 120 (exact) / decode step",
    ]
    assert figures[2].detail["pruned"] == 108 and figures[-1].goal is None


def test_a_figure_resting_on_an_unfinished_run_never_meets_its_goal():
    good = Figure("P2", "x", [0.2, 0.1, 0.4], Goal("<=", 0.33))
    bad = Figure("P2", "x", [0.2], Goal("<=", 0.33), valid=False)

    assert (good.median, good.low, good.high, good.met) == (0.2, 0.1, 0.4, True)
    assert bad.met is False
    assert Figure("P4", "x", [3.0]).met is None
    assert str(Goal(">=", 1.0)) == "≥ 1"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"runs": 0}, "runs=0"),
        ({"replay_runs": 0}, "replay_runs=0"),
        ({"decode_tokens": 0}, "decode_tokens=0"),
        ({"budget": 8}, "budget=8"),
        ({"horizons": ()}, "horizons=()"),
        ({"horizons": (0, 10)}, "horizons=(0, 10)"),
        ({"cache_tokens": 5}, "cache_tokens=5"),
        ({"fractions": (0.5, 1.0)}, "fractions=(0.5, 1.0)"),
        ({"families": ("tree",)}, "families=('tree',)"),
    ],
)
def test_bad_options_raise_bench_error_naming_the_option(options, named):
    with pytest.raises(BenchError, match=named.replace("(", r"\(").replace(")", r"\)")):
        BenchOptions(**options)


def test_bad_figures_and_modes_raise_bench_error(target):
    assert parse_figures("p1, P4,P1") == ("P1", "P4")
    with pytest.raises(BenchError, match="figures='P1,P9'"):
        parse_figures("P1,P9")
    with pytest.raises(BenchError, match="replay mode 'fast'"):
        replay(target, make("chain", 2, 0), "fast")


# 3) the command


def test_bench_command_runs_quick_end_to_end_and_writes_json(smollm2_tokenizer, tmp_path):
    folder = tmp_path / "tiny"
    make_tiny_llama(len(smollm2_tokenizer)).save_pretrained(folder)
    smollm2_tokenizer.save_pretrained(folder)
    out = tmp_path / "bench.json"
    missing = tmp_path / "missing"

    args = ["bench", "-m", f"{folder},{missing}", "--quick", "--runs", "1", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    report = json.loads(out.read_text())

    assert result.exit_code == 1, result.output  # the missing model is an error, not a crash
    assert set(report["errors"]) == {str(missing)}
    assert {"platform", "cpu_count", "torch", "torch_threads"} <= set(report["machine"])
    (entry,) = report["models"]
    figures = entry["figures"]
    assert {f["figure"] for f in figures} == {"P1", "P2", "P3", "P4", "P5"}
    keys = {"figure", "name", "median", "low", "high", "ratios", "goal", "met", "valid", "detail"}
    assert all(set(f) == keys and f["low"] <= f["median"] <= f["high"] for f in figures)
    replays = [f for f in figures if f["figure"] in ("P2", "P3")]
    assert all(f["valid"] and f["detail"]["same_tokens"] for f in replays)
    assert "P3" in result.output and "thread bench" in result.output


def test_bench_command_names_a_bad_option(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--figures", "P7", "--out", str(tmp_path / "b")])

    assert result.exit_code == 2
    assert "P7" in result.output
