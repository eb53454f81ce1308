"""P4: one prune of 10 %, 50 % or 90 % of a full cache, against one decode step on that cache.

The cache is filled once with real trace text; the pruned span ends a twentieth before the end,
as a finished subtree would, so `exact` re-encodes that tail and `shift` re-rotates it. A copy
of the cache restores it after every timed prune.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from thread.bench.figures import GOALS, BenchOptions, Figure, Target
from thread.cache import KVCacheManager
from thread.tasks import make

PREFILL_CHUNK = 512


def prune_figures(
    target: Target, options: BenchOptions, say: Callable[[str], None]
) -> list[Figure]:
    """Seconds of one prune of a fraction of the cache over seconds of one decode step on it."""
    n = options.cache_tokens
    ids = filler_ids(target, n)
    say(f"P4 prefill {n} tokens")
    cache = filled_cache(target, ids)
    saved = snapshot(cache)
    tail = max(1, n // 20)  # tokens after the pruned span: the conclusion and the next task
    for mode in ("shift", "exact"):  # warm-up: the first call of each path pays for set-up
        decode_step_seconds(cache, ids[0])
        cache.prune(range(n - tail - 1, n - tail), mode)
        restore(cache, saved)
    figures = []
    for fraction in options.fractions:
        size = min(n - tail, max(1, round(fraction * n)))
        span = list(range(n - tail - size, n - tail))
        for mode in ("shift", "exact"):
            say(f"P4 prune {fraction:.0%} {mode}")
            steps, prunes = [], []
            for _ in range(options.runs):
                steps.append(decode_step_seconds(cache, ids[0]))
                prunes.append(cache.prune(span, mode).seconds)
                restore(cache, saved)
            detail = {
                "cache_tokens": n,
                "pruned": size,
                "after_span": tail,
                "prune_seconds": statistics.median(prunes),
                "step_seconds": statistics.median(steps),
            }
            name = f"prune {fraction:.0%} of {n} ({mode}) / decode step"
            ratios = [p / s for p, s in zip(prunes, steps)]
            figures.append(Figure("P4", name, ratios, GOALS["P4"], detail))
    figures.append(_step_figure(target, cache, ids, options))
    return figures


def _step_figure(
    target: Target, cache: KVCacheManager, ids: list[int], options: BenchOptions
) -> Figure:
    """What a prune buys each later step: a decode step at a short cache over one at the full."""
    short_tokens = min(len(ids), options.budget or 256)
    short = filled_cache(target, ids[:short_tokens])
    shorts, longs = [], []
    for _ in range(options.runs):
        shorts.append(decode_step_seconds(short, ids[0]))
        longs.append(decode_step_seconds(cache, ids[0]))
    detail = {
        "short_tokens": short_tokens,
        "long_tokens": len(ids),
        "short_step_seconds": statistics.median(shorts),
        "long_step_seconds": statistics.median(longs),
    }
    name = f"decode step at {short_tokens} / at {len(ids)} live tokens"
    return Figure("P4", name, [s / lo for s, lo in zip(shorts, longs)], None, detail)


def filler_ids(target: Target, n: int) -> list[int]:
    """`n` token ids of real trace text (a long gold chain), so attention sees realistic input."""
    text = json.dumps(make("chain", max(8, n // 30), 0).document)
    ids = target.tokenizer.encode(text, add_special_tokens=False)
    return (ids * (n // len(ids) + 1))[:n]


def filled_cache(target: Target, ids: list[int]) -> KVCacheManager:
    cache = KVCacheManager(target.model)
    for start in range(0, len(ids), PREFILL_CHUNK):
        cache.forward(ids[start : start + PREFILL_CHUNK], last_only=True)
    return cache


def decode_step_seconds(cache: KVCacheManager, token_id: int) -> float:
    """Seconds of one decode step on `cache`; the cache is left as it was."""
    started = time.perf_counter()
    cache.forward([token_id], last_only=True)
    seconds = time.perf_counter() - started
    cache.crop_last(1)
    return seconds


def snapshot(cache: KVCacheManager) -> dict:
    """A copy of the cache tensors and slot table: each timed prune starts from the same cache."""
    layers = [(layer.keys.clone(), layer.values.clone()) for layer in cache.cache.layers]
    slots = (cache.slots.token_ids.clone(), cache.slots.indices.clone(), cache.slots.positions)
    counters = (cache.next_index, cache.next_position, cache.num_clean)
    return {"layers": layers, "slots": slots, "counters": counters}


def restore(cache: KVCacheManager, saved: dict) -> None:
    for layer, (keys, values) in zip(cache.cache.layers, saved["layers"]):
        layer.keys, layer.values = keys.clone(), values.clone()
    token_ids, indices, positions = (t.clone() for t in saved["slots"])
    cache.slots.token_ids, cache.slots.indices, cache.slots.positions = (
        token_ids,
        indices,
        positions,
    )
    cache.next_index, cache.next_position, cache.num_clean = saved["counters"]
