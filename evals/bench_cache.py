"""Prune cost: SmolLM2 with a 4,000-token cache; free 10 %, 50 % and 90 % of it in each mode.

Printed as a ratio to one decode step at that cache size (median of the runs, with the spread),
and for `exact` also to a prefill of the same re-encoded suffix onto the kept prefix.
Goals: `shift` of 90 % <= 1 decode step; `exact` <= the suffix prefill.

    .venv/bin/python evals/bench_cache.py [--tokens 4000] [--repeat 5] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial

import torch
from rich.console import Console
from rich.table import Table

from thread.cache import KVCacheManager, SlotTable
from thread.models import load_model

PREFIX_SHARE = 0.05  # the prompt stays; freed spans lie after it, as a subtree's would
NUM_SPANS = 8


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def snapshot(manager: KVCacheManager) -> dict:
    slots = manager.slots
    return {
        "layers": [(layer.keys.clone(), layer.values.clone()) for layer in manager.cache.layers],
        "slots": (slots.token_ids.clone(), slots.indices.clone(), slots.positions.clone()),
        "counters": (manager.next_index, manager.next_position, manager.num_clean),
    }


def restore(manager: KVCacheManager, state: dict) -> None:
    for layer, (keys, values) in zip(manager.cache.layers, state["layers"]):
        layer.keys, layer.values = keys.clone(), values.clone()
    manager.slots = SlotTable()
    manager.slots.token_ids, manager.slots.indices, manager.slots.positions = (
        t.clone() for t in state["slots"]
    )
    manager.next_index, manager.next_position, manager.num_clean = state["counters"]


def spans_to_free(num_tokens: int, fraction: float) -> list[int]:
    """`fraction` of the slots, as NUM_SPANS equal spans spread evenly after the prefix."""
    total, prefix = round(num_tokens * fraction), round(num_tokens * PREFIX_SHARE)
    stride = (num_tokens - prefix) // NUM_SPANS
    length = min(stride, -(-total // NUM_SPANS))
    starts = [prefix + s * stride for s in range(NUM_SPANS)]
    return [i for start in starts for i in range(start, start + length)][:total]


def decode_step(manager: KVCacheManager, state: dict, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        restore(manager, state)
        times.append(timed(lambda: manager.forward([42], last_only=True), manager.device))
    return times


def suffix_prefill(
    manager: KVCacheManager, state: dict, freed: list[int], repeat: int
) -> list[float]:
    """What `exact` cannot avoid: a prefill of the kept suffix after the first gap onto the prefix."""
    times, freed_set = [], set(freed)
    for _ in range(repeat):
        restore(manager, state)
        kept = [i for i in manager.live_indices if i >= freed[0] and i not in freed_set]
        manager.crop_last(manager.num_live - freed[0])
        token_ids = [int(state["slots"][0][i]) for i in kept]
        run = partial(manager.forward, token_ids, kept, last_only=True)
        times.append(timed(run, manager.device))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--exact-repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=120)

    # 1) a cache of `--tokens` tokens of text-like ids
    model, _ = load_model("smollm2", dtype=args.dtype, device=args.device)
    manager = KVCacheManager(model)
    generator = torch.Generator().manual_seed(0)
    token_ids = torch.randint(100, 40000, (args.tokens,), generator=generator).tolist()
    with console.status(f"prefill of {args.tokens} tokens"):
        prefill = timed(lambda: manager.forward(token_ids, last_only=True), manager.device)
    state = snapshot(manager)
    step = statistics.median(decode_step(manager, state, args.repeat))

    # 2) every mode at every fraction, from the same cache each time
    table = Table(title=f"prune cost, SmolLM2-135M, {args.tokens}-token cache, {args.dtype}")
    columns = ("mode", "freed", "re-encoded", "median ms", "spread ms", "x decode", "x suffix prefill")
    for column in columns:
        table.add_column(column, justify="right")
    for mode in ("keep", "shift", "exact"):
        for fraction in (0.1, 0.5, 0.9):
            freed = spans_to_free(args.tokens, fraction)
            times, result = [], None
            for _ in range(args.exact_repeat if mode == "exact" else args.repeat):
                restore(manager, state)
                times.append(timed(lambda: manager.prune(freed, mode), manager.device))
                result = manager.prunes[-1]
            median = statistics.median(times)
            versus_prefill = "-"
            if mode == "exact":
                prefill_times = suffix_prefill(manager, state, freed, args.exact_repeat)
                versus_prefill = f"{median / statistics.median(prefill_times):.2f}"
            table.add_row(
                mode,
                f"{len(freed)} ({fraction:.0%})",
                str(result.reencoded),
                f"{median * 1e3:.1f}",
                f"{min(times) * 1e3:.1f}-{max(times) * 1e3:.1f}",
                f"{median / step:.2f}",
                versus_prefill,
            )
    console.print(table)
    where = torch.cuda.get_device_name() if manager.device.type == "cuda" else platform.processor()
    console.print(
        f"device {manager.device} ({where or platform.machine()}), torch threads "
        f"{torch.get_num_threads()}, decode step {step * 1e3:.1f} ms at {args.tokens} live tokens, "
        f"prefill {prefill:.1f} s"
    )


if __name__ == "__main__":
    main()
