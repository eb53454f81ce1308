"""P2, P3 and P5 for one task family: replays at horizons measured in multiples of the budget.

One gold trace is as long as the longest horizon. P2 and P3 pair every mode on it, interleaved
run by run; P5 reads the `exact` replay's peak live over the trace's prefixes, one per horizon,
so a longer horizon costs no further replay. Goals apply from a 10x horizon on.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from thread.bench.figures import GOALS, BenchOptions, Figure, Target
from thread.bench.replays import REPLAY_MODES, ReplayRun, auto_budget, instance_for, replay

GOAL_HORIZON = 10


def replay_modes(only: tuple[str, ...]) -> list[str]:
    """The modes the figures in `only` need at the longest horizon, in table order."""
    wanted = {"exact"}
    if "P2" in only:
        wanted |= {"none", "shift"}
    if "P3" in only:
        wanted.add("reprefill")
    return [m for m in REPLAY_MODES if m in wanted]


def horizon_figures(
    target: Target,
    family: str,
    options: BenchOptions,
    only: tuple[str, ...],
    say: Callable[[str], None],
) -> list[Figure]:
    """The figures of `only` among P2, P3 and P5 for one task family."""
    # 1) the budget, and a trace as long as the longest horizon
    say(f"{family}: sizing the trace")
    budget = options.budget or auto_budget(target, family, options.seed)
    longest = options.horizons[-1]
    instance = instance_for(target, family, round(longest * budget), options.seed)

    # 2) every mode on it, interleaved so that drift hits them alike
    runs: dict[str, list[ReplayRun]] = {m: [] for m in replay_modes(only)}
    for i in range(options.replay_runs):
        for mode, mode_runs in runs.items():
            say(f"{family} {longest:g}x {mode} replay {i + 1}/{options.replay_runs}")
            mode_runs.append(replay(target, instance, mode))

    # 3) the figures
    base = _base_detail(budget, instance, runs)
    figures = []
    if "P2" in only:
        figures += _pruned_vs_unpruned(family, longest, runs, base)
    if "P3" in only:
        name = f"{family} {longest:g}x wall time, in-cache exact / re-prefill"
        figures.append(_paired("P3", name, runs["exact"], runs["reprefill"], longest, base))
    if "P5" in only:
        figures += _peak_figures(family, budget, options.horizons, runs["exact"][0])
    return figures


def _base_detail(budget: int, instance: Any, runs: dict[str, list[ReplayRun]]) -> dict:
    first = runs["exact"][0]
    return {
        "budget": budget,
        "size": instance.size,
        "trace_tokens": first.num_tokens,
        "same_tokens": same_tokens(runs),
        "greedy_agreement_with_exact": {
            mode: greedy_agreement(rs[0], first) for mode, rs in runs.items() if mode != "exact"
        },
    }


def _pruned_vs_unpruned(
    family: str, horizon: float, runs: dict[str, list[ReplayRun]], base: dict
) -> list[Figure]:
    figures = []
    for mode in ("exact", "shift"):
        name = f"{family} {horizon:g}x wall time, {mode} / unpruned"
        figures.append(_paired("P2", name, runs[mode], runs["none"], horizon, base))
        peak, unpruned = runs[mode][0].peak_live, runs["none"][0].peak_live
        detail = {**base, "peak_live": peak, "unpruned_peak_live": unpruned}
        name = f"{family} {horizon:g}x peak live, {mode} / unpruned"
        goal = GOALS["P2"] if horizon >= GOAL_HORIZON else None
        valid = _finished(runs[mode] + runs["none"]) and base["same_tokens"]
        figures.append(Figure("P2", name, [peak / unpruned], goal, detail, valid))
    return figures


def _paired(
    figure: str,
    name: str,
    runs: list[ReplayRun],
    refs: list[ReplayRun],
    horizon: float,
    base: dict,
) -> Figure:
    """Wall time of `runs` over wall time of `refs`, run by run."""
    detail = {
        **base,
        "seconds": statistics.median(r.seconds for r in runs),
        "reference_seconds": statistics.median(r.seconds for r in refs),
        "model_share": statistics.median(r.model_seconds / r.seconds for r in runs),
        "reference_model_share": statistics.median(r.model_seconds / r.seconds for r in refs),
        "prunes": runs[0].num_prunes,
        "reencoded": runs[0].num_reencoded,
        "reference_reencoded": refs[0].num_reencoded,
    }
    ratios = [r.seconds / ref.seconds for r, ref in zip(runs, refs)]
    goal = GOALS[figure] if horizon >= GOAL_HORIZON else None
    valid = _finished(runs + refs) and base["same_tokens"]
    return Figure(figure, name, ratios, goal, detail, valid)


def _peak_figures(
    family: str, budget: int, horizons: tuple[float, ...], run: ReplayRun
) -> list[Figure]:
    """Peak live over trace tokens at each horizon (a prefix of the trace; all of it at the
    longest), and how much the peak grew from the shortest horizon to the longest."""
    figures, peaks = [], {}
    for h in horizons:
        num_tokens = run.num_tokens if h == horizons[-1] else round(h * budget)
        peaks[h] = run.peak_live_within(num_tokens)
        name = f"{family} peak live / trace tokens, {h:g}x budget"
        detail = {"budget": budget, "peak_live": peaks[h], "trace_tokens": num_tokens}
        goal = GOALS["P5"] if h >= GOAL_HORIZON else None
        ratio = peaks[h] / num_tokens
        figures.append(Figure("P5", name, [ratio], goal, detail, run.status == "done"))
    if len(horizons) > 1:
        shortest, longest = horizons[0], horizons[-1]
        name = f"{family} peak live growth, {shortest:g}x → {longest:g}x budget"
        detail = {"peaks": {f"{h:g}x": p for h, p in peaks.items()}}
        growth = peaks[longest] / peaks[shortest]
        figures.append(Figure("P5", name, [growth], GOALS["P5 flat"], detail, run.status == "done"))
    return figures


def same_tokens(runs: dict[str, list[ReplayRun]]) -> bool:
    """Every mode and run wrote the same transcript."""
    first = next(iter(runs.values()))[0]
    return all(r.ids == first.ids for rs in runs.values() for r in rs)


def greedy_agreement(run: ReplayRun, ref: ReplayRun) -> float:
    """Share of steps at which both runs' greedy picks were the same token."""
    assert len(run.greedy) == len(ref.greedy), f"{len(run.greedy)=} {len(ref.greedy)=}"
    same = sum(a == b for a, b in zip(run.greedy, ref.greedy))
    return same / max(1, len(ref.greedy))


def _finished(runs: list[ReplayRun]) -> bool:
    return all(r.status == "done" for r in runs)
