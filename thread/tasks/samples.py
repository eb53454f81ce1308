"""Training windows: one live view plus what the model writes until the next prune.

Windows are drawn directly at any position of an episode (O(1) for `chain`: only the kept
siblings and the task being written are generated), weighting the hard cases: the first block,
the answer step, block counters that cross a round number, and the largest sizes.
"""

from __future__ import annotations

import math
import random

from thread.tasks import arith, chain
from thread.tasks.views import Encoder, View, gold_stream, live_views

PROMPT_TEMPLATE = "{task}\n"
CHAIN_MAX_HOPS = 1500
ARITH_MAX_OPS = 40
CLOSE_TEXT = '], "conclusion": "'  # what a view that closes a group starts with


def _log_uniform(rng: random.Random, hi: int) -> int:
    return min(hi, int(math.exp(rng.uniform(0, math.log(hi + 1)))))


def _boundary(rng: random.Random, hi: int) -> int:
    """A number just below or above a round one (10, 100, 1000, 500, ...), at most `hi`: the
    first hops and block counters of such a chain change the number of digits or borrow."""
    base = rng.choice((10, 20, 50, 100, 200, 300, 500, 1000, 1000, 1100, 1200, 1500, 2000))
    return max(1, min(hi, base + rng.randint(-2, 10)))


def _num_hops(rng: random.Random, max_hops: int) -> int:
    r = rng.random()
    if r < 0.25:
        return _log_uniform(rng, max_hops)
    if r < 0.45:
        return _boundary(rng, max_hops)
    if r < 0.6:  # the largest third: four-digit counters
        return rng.randint(max(1, max_hops * 2 // 3), max_hops)
    if r < 0.7:  # a first block of ten hops or of one, which the next counters must tell apart
        return min(max_hops, 10 * _log_uniform(rng, max_hops // 10) + rng.choice((0, 1)))
    return rng.randint(1, max_hops)


def chain_window(rng: random.Random, encode: Encoder, max_hops: int = CHAIN_MAX_HOPS) -> View:
    """The live view of one step of a random chain, weighting the steps that are rare in an
    episode: the first block, block heads whose counter borrows, block closes and the answer."""
    n = _num_hops(rng, max_hops)
    spans = chain.blocks(n)
    r = rng.random()
    t = 0
    if r < 0.1:
        if rng.random() < 0.3:  # a chain of one or two blocks: answer, not another block
            n = rng.randint(1, 20)
            spans = chain.blocks(n)
        kind, b = "answer", len(spans) - 1
    elif r < 0.2:
        kind, b = "close", rng.randrange(len(spans))
    elif r < 0.3:
        kind, b = "hop", 0
        t = rng.randrange(spans[0][1])
    elif r < 0.36:
        kind, b = "hop", min(1, len(spans) - 1)  # the block counter zeroes N's last digit
    elif r < 0.42:
        kind, b = "hop", min(2, len(spans) - 1)  # the first ten off a round counter
    elif r < 0.56:  # a block head whose counter crosses a round number (300 -> 290, 1000 -> 990)
        kind = "hop"
        round_heads = [i for i, (s, _) in enumerate(spans) if i and (n - s) // 10 % 10 in (0, 9)]
        b = rng.choice(round_heads) if round_heads else rng.randrange(len(spans))
    else:
        kind, b = "hop", rng.randrange(len(spans))
        t = rng.randrange(spans[b][1])
    keys: dict[int, str] = {}
    used: set[str] = set()

    def key_at(i: int) -> str:
        while i not in keys:
            key = chain.random_key(rng)
            if key not in used:
                used.add(key)
                keys[i] = key
        return keys[i]

    return chain_view(n, kind, b, t, key_at, encode)


def chain_view(n: int, kind: str, b: int, t: int, key_at, encode: Encoder) -> View:
    """The live view in which block `b` of an n-hop chain writes hop `t` (`kind` "hop"), its
    closing conclusion ("close"), or, after the last block, the answer ("answer").

    `key_at(i)` is the key before hop i. Only what the view can hold is generated: the two
    blocks before `b` (collapsed, so one hop each stands for their pruned subtasks) and the last
    few hops of block `b`.
    """
    spans = chain.blocks(n)
    tasks = []
    for start, size in spans[max(0, b - 2) : b]:
        first = start + size - 1
        tasks.append(chain.block_task(n, start, [key_at(first), key_at(first + 1)], first))
    start, size = spans[b]
    last = start + (t if kind == "hop" else size - 1)
    first = max(start, last - 3)
    tasks.append(chain.block_task(n, start, [key_at(i) for i in range(first, start + size + 1)], first))
    if kind == "hop":  # the block is still open after hop t
        tasks[-1]["subtasks"] = tasks[-1]["subtasks"][: last - first + 1]
    doc: dict = {"reasoning": tasks}
    if kind == "answer":
        doc["answer"] = key_at(n)
    prompt = PROMPT_TEMPLATE.format(task=chain.task_text(n, key_at(0)))
    return live_views(gold_stream(prompt, doc, open_end=kind == "hop"), encode)[-1]


def arith_window(rng: random.Random, encode: Encoder, max_ops: int = ARITH_MAX_OPS) -> View:
    """One live view of a random expression's episode (the answer view weighted up).

    Most expressions have up to 12 operations; a quarter are longer, up to `max_ops`, for the
    deeper nesting, larger positions and longer prompts of the large sizes.
    """
    if rng.random() < 0.75:
        num_ops = rng.randint(1, min(12, max_ops)) if rng.random() < 0.8 else _log_uniform(rng, 12)
    else:
        num_ops = rng.randint(13, max_ops)
    text = arith.random_expression(rng, max(0, num_ops) if rng.random() > 0.01 else 0)
    doc = arith.gold_document(text)
    views = live_views(gold_stream(PROMPT_TEMPLATE.format(task=text), doc), encode)
    if rng.random() < 0.1:
        return views[-1]
    if rng.random() < 0.3:  # a group's close, rare in an episode: it copies the parent's stack
        close = encode(CLOSE_TEXT)[0][0]
        closes = [v for v in views[:-1] if v.new and v.new[0][0] == close]
        if closes:
            return rng.choice(closes)
    return rng.choice(views)


def episode_views(instance, encode: Encoder) -> list[View]:
    """All live views of an instance's gold episode, in order."""
    prompt = PROMPT_TEMPLATE.format(task=instance.text)
    return live_views(gold_stream(prompt, instance.document), encode)
