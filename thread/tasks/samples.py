"""Training windows: one live view plus what the model writes until the next prune.

Windows are drawn directly at any position of an episode (O(1) for `chain`: only the two kept
siblings and the task being written are generated), weighting the hard cases: the first hop,
the answer step, countdowns that cross a digit-length boundary, and the largest sizes.
"""

from __future__ import annotations

import math
import random

from thread.tasks import arith, chain
from thread.tasks.views import Encoder, View, gold_stream, live_views

PROMPT_TEMPLATE = "{task}\n"
CHAIN_MAX_HOPS = 1500
ARITH_MAX_OPS = 12


def _log_uniform(rng: random.Random, hi: int) -> int:
    return min(hi, int(math.exp(rng.uniform(0, math.log(hi + 1)))))


def _boundary(rng: random.Random, hi: int) -> int:
    """A number next to a power of ten or a round number, at most `hi`."""
    base = rng.choice((10, 100, 1000, 10, 100, 1000, 20, 50, 200, 500, 1100, 1200, 1500))
    return max(1, min(hi, base + rng.choice((-2, -1, -1, 0, 0, 1, 1, 2))))


def chain_window(rng: random.Random, encode: Encoder, max_hops: int = CHAIN_MAX_HOPS) -> View:
    """The live view before hop j of a random chain (j == N: before the answer)."""
    r = rng.random()
    n = (
        _log_uniform(rng, max_hops)
        if r < 0.3
        else _boundary(rng, max_hops)
        if r < 0.45
        else rng.randint(max(1, max_hops - 300), max_hops)
        if r < 0.55
        else rng.randint(1, max_hops)
    )
    r = rng.random()
    if r < 0.2:
        j = 0
    elif r < 0.3:
        j = n
    elif r < 0.45:
        j = n - _boundary(rng, n)  # remaining count n - j sits next to a round number
    elif r < 0.5:
        j = min(n, rng.randint(1, 3))
    else:
        j = rng.randint(0, n)
    lo = max(0, j - 3)
    keys = chain.random_chain(rng, min(j + 1, n) - lo + 1)
    start = keys[0] if lo == 0 else chain.random_key(rng)
    return chain_view(n, j, start, keys, encode)


def chain_view(n: int, j: int, start: str, keys: list[str], encode: Encoder) -> View:
    """The live view in which hop j of an n-hop chain is written (j == n: the answer).

    `keys` are the keys from hop max(0, j - 3) on; only the three finished siblings before hop
    j are generated, the oldest of which the window prunes when its successor closes.
    """
    lo, hi = max(0, j - 3), min(j + 1, n)
    assert len(keys) == hi - lo + 1, f"{len(keys)=} {lo=} {hi=}"
    tasks = [chain.hop_task(n - i, keys[i - lo], keys[i - lo + 1]) for i in range(lo, hi)]
    doc: dict = {"reasoning": tasks}
    if j == n:
        doc["answer"] = keys[-1]
    text = chain.task_text(n, start)
    return live_views(gold_stream(PROMPT_TEMPLATE.format(task=text), doc), encode)[-1]


def arith_window(rng: random.Random, encode: Encoder, max_ops: int = ARITH_MAX_OPS) -> View:
    """One live view of a random expression's episode (the answer view weighted up)."""
    num_ops = rng.randint(1, max_ops) if rng.random() < 0.6 else _log_uniform(rng, max_ops)
    text = arith.random_expression(rng, max(0, num_ops) if rng.random() > 0.01 else 0)
    doc = arith.gold_document(text)
    views = live_views(gold_stream(PROMPT_TEMPLATE.format(task=text), doc), encode)
    if rng.random() < 0.15:
        return views[-1]
    return rng.choice(views)


def episode_views(instance, encode: Encoder) -> list[View]:
    """All live views of an instance's gold episode, in order."""
    prompt = PROMPT_TEMPLATE.format(task=instance.text)
    return live_views(gold_stream(prompt, instance.document), encode)
