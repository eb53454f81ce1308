"""P1: decode tokens/s of the runtime against `model.generate`, pruning off.

Both sides decode greedily from the same prompt and make the same number of new tokens; both
timings include the prefill. The runtime keeps its grammar mask on (it is what keeps a model in
the format), once with fast-forward of forced tokens and once with every token picked.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from thread.bench.figures import GOALS, BenchOptions, Figure, Target
from thread.controller import Controller
from thread.rules import load_rules
from thread.runner import DecodeLoop, Sampling
from thread.tools import ToolRegistry

DECODE_TASK = "((17+25)*3)-(48-19)"


class NoForcing:
    """A grammar constraint that masks as usual but never forces: every token is a model pick."""

    def __init__(self, constraint: Any) -> None:
        self.inner = constraint

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def forced(self) -> list[int]:
        return []


def decode_figures(
    target: Target, options: BenchOptions, say: Callable[[str], None]
) -> list[Figure]:
    """Runtime tokens/s over `generate` tokens/s, with and without fast-forward."""
    from thread.prompting import build_prompt

    prompt_ids = build_prompt(
        target.tokenizer, DECODE_TASK, tools=ToolRegistry(), fmt=target.fmt, config=target.config
    )
    say("P1 warm-up")
    decode_runtime(target, prompt_ids, 2, fast_forward=True)
    decode_generate(target, prompt_ids, 2)
    figures = []
    for fast_forward in (False, True):
        label = "fast-forward " if fast_forward else ""
        runs, refs = [], []
        for i in range(options.runs):
            say(f"P1 {label}run {i + 1}/{options.runs}")
            runs.append(decode_runtime(target, prompt_ids, options.decode_tokens, fast_forward))
            refs.append(decode_generate(target, prompt_ids, runs[-1]["new"]))
        ratios = [_speed(r) / _speed(ref) for r, ref in zip(runs, refs)]
        name = "decode tok/s, runtime / generate" + (", fast-forward" if fast_forward else "")
        valid = all(r["status"] in ("max_tokens", "done", "eos") for r in runs)
        detail = _detail(prompt_ids, runs, refs)
        figures.append(Figure("P1", name, ratios, GOALS["P1"], detail, valid))
    return figures


def decode_runtime(
    target: Target, prompt_ids: list[int], num_tokens: int, fast_forward: bool
) -> dict:
    """One greedy run of the decode loop under rule set `none`; new tokens and seconds."""
    from thread.constrain import GrammarConstraint, bounds_from_config

    constraint = GrammarConstraint(target.tokenizer, target.fmt, bounds_from_config(target.config))
    controller = Controller(
        target.fmt, load_rules("none", target.fmt), target.tokenizer, tools=ToolRegistry()
    )
    loop = DecodeLoop(
        target.model,
        controller,
        Sampling(temperature=0.0),
        constraint=constraint if fast_forward else NoForcing(constraint),
        max_new_tokens=num_tokens,
        eos_ids=target.eos_ids,
    )
    started = time.perf_counter()
    stats = loop.run(prompt_ids)
    seconds = time.perf_counter() - started
    new = stats.num_decoded + stats.num_forced  # tokens a tool wrote are not decoded: left out
    return {"new": new, "seconds": seconds, "forced": stats.num_forced, "status": stats.status}


def decode_generate(target: Target, prompt_ids: list[int], num_tokens: int) -> dict:
    """`model.generate`, greedy, exactly `num_tokens` new tokens; seconds."""
    ids = torch.tensor([prompt_ids], device=target.model.device)  # [1, T]
    pad = target.tokenizer.eos_token_id if target.tokenizer.eos_token_id is not None else 0
    started = time.perf_counter()
    with torch.inference_mode():
        out = target.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=num_tokens,
            min_new_tokens=num_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
    seconds = time.perf_counter() - started
    assert out.shape[1] - ids.shape[1] == num_tokens, f"{out.shape=} {num_tokens=}"
    return {"new": num_tokens, "seconds": seconds}


def _speed(run: dict) -> float:
    return run["new"] / run["seconds"]


def _detail(prompt_ids: list[int], runs: list[dict], refs: list[dict]) -> dict:
    return {
        "prompt_tokens": len(prompt_ids),
        "new_tokens": runs[0]["new"],
        "forced_tokens": runs[0]["forced"],
        "status": runs[0]["status"],
        "runtime_tok_s": statistics.median(_speed(r) for r in runs),
        "generate_tok_s": statistics.median(_speed(r) for r in refs),
    }
