"""P2, P3, P5: teacher-forced replays of gold traces through the runtime, in four modes.

`none` runs without pruning; `exact` and `shift` prune in the cache under the `window` rules;
`reprefill` is the agent-framework loop that rebuilds the kept context after every collapse and
prefills it into a fresh cache. Every mode writes the same gold tokens; the greedy pick at each
step is recorded too, so the modes can be compared on what the model would have decoded.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from thread.bench.figures import BenchError, Target
from thread.cache import KVCacheManager
from thread.controller import Controller, Prune
from thread.replay import Replay
from thread.rules import RuleSet, load_rules
from thread.runner import DecodeLoop
from thread.tasks import make
from thread.tasks.samples import PROMPT_TEMPLATE
from thread.tools import builtin_tools

REPLAY_MODES = ("none", "exact", "shift", "reprefill")
REFERENCE_SIZE = 8  # hops or operations of the trace whose peak live sets the automatic budget


class MeasuredLoop(DecodeLoop):
    """A decode loop that also counts live slots, prunes, seconds in the model and the greedy
    pick at every step (whatever the chooser then writes)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peak_live = 0
        self.live_curve: list[tuple[int, int]] = []  # (trace tokens forwarded, live after)
        self.forward_seconds = 0.0
        self.num_prunes = 0
        self.greedy: list[int] = []

    def choose(self, logits: torch.Tensor) -> int:
        self.greedy.append(int(torch.argmax(logits)))
        return super().choose(logits)

    def apply_prune(self, action: Prune) -> None:
        self.num_prunes += 1
        super().apply_prune(action)

    def forward(self, indices: list[int], *, last_only: bool = False) -> torch.Tensor:
        started = time.perf_counter()
        logits = super().forward(indices, last_only=last_only)
        self.forward_seconds += time.perf_counter() - started
        self.peak_live = max(self.peak_live, self.cache.num_live)
        self.live_curve.append((indices[-1] + 1, self.cache.num_live))
        return logits


class RePrefillLoop(MeasuredLoop):
    """The agent-framework baseline: after a collapse the kept context is prefilled from scratch.

    A prune only marks its tokens dropped; the next forward rebuilds the context (kept live
    tokens, then pending ones) and prefills it into a fresh cache, once per step however many
    rules fired. It reuses the transcript's token ids instead of re-tokenizing the text, so the
    transcript stays aligned with the cache; tokenizing is a negligible share of the cost.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.dropped: set[int] = set()
        self.num_reprefilled = 0

    def apply_prune(self, action: Prune) -> None:
        self.num_prunes += 1
        self.dropped.update(action.indices)
        self.controller.applied_prune(action, len(action.indices), 0, 0.0)

    def flush(self) -> torch.Tensor:
        if self.dropped:
            kept = [*self.cache.live_indices, *self.pending]
            self.pending = [i for i in kept if i not in self.dropped]
            self.dropped.clear()
            self.cache = KVCacheManager(self.model)
            self.num_reprefilled += len(self.pending)
        return super().flush()


@dataclass
class ReplayRun:
    mode: str
    seconds: float
    model_seconds: float
    peak_live: int
    num_tokens: int  # the whole trace: prompt, model-written and tool tokens
    num_prunes: int
    num_reencoded: int  # exact: kept suffixes re-encoded; reprefill: contexts prefilled again
    status: str
    ids: list[int] = field(repr=False, default_factory=list)
    greedy: list[int] = field(repr=False, default_factory=list)
    live_curve: list[tuple[int, int]] = field(repr=False, default_factory=list)

    def peak_live_within(self, num_tokens: int) -> int:
        """Peak live tokens while the first `num_tokens` tokens of the trace were written."""
        return max((live for n, live in self.live_curve if n <= num_tokens), default=0)


def replay(target: Target, instance: Any, mode: str) -> ReplayRun:
    """Write the gold document of `instance` through the runtime in `mode` (see REPLAY_MODES).

    Pruned modes are not held to a budget: they report the peak live tokens they reached.
    """
    loop = replay_loop(target, instance, mode)
    started = time.perf_counter()
    stats = loop.run(prompt_ids(target, instance))
    seconds = time.perf_counter() - started
    ledger = loop.controller.ledger
    ids = list(loop.controller.transcript.ids)
    return ReplayRun(
        mode,
        seconds,
        loop.forward_seconds,
        loop.peak_live,
        len(ids),
        loop.num_prunes,
        getattr(loop, "num_reprefilled", ledger.reencoded),
        stats.status,
        ids,
        loop.greedy,
        loop.live_curve,
    )


def replay_loop(target: Target, instance: Any, mode: str) -> MeasuredLoop:
    """A decode loop, not yet run, whose chooser writes the gold document of `instance`."""
    if mode not in REPLAY_MODES:
        raise BenchError(f"replay mode {mode!r}: allowed {', '.join(REPLAY_MODES)}")
    tools = builtin_tools(table=instance.table)
    controller = Controller(target.fmt, replay_rules(target, mode), target.tokenizer, tools=tools)
    loop_class = RePrefillLoop if mode == "reprefill" else MeasuredLoop
    loop = loop_class(target.model, controller, max_new_tokens=10**7, eos_ids=target.eos_ids)
    eos = min(target.eos_ids) if target.eos_ids else None
    loop.chooser = Replay(target.tokenizer, gold_text(instance), controller, eos_id=eos)
    return loop


def replay_rules(target: Target, mode: str) -> RuleSet:
    """Rule set `none`, or `window` with every policy in the cache mode of `mode`."""
    if mode == "none":
        return load_rules("none", target.fmt)
    rules = load_rules("window", target.fmt)
    for policy in rules.policies:
        policy.mode = "shift" if mode == "shift" else "exact"
    return rules


def gold_text(instance: Any) -> str:
    return json.dumps(instance.document, ensure_ascii=False)


def prompt_ids(target: Target, instance: Any) -> list[int]:
    prompt = PROMPT_TEMPLATE.format(task=instance.text)
    return target.tokenizer.encode(prompt, add_special_tokens=False)


def trace_tokens(target: Target, instance: Any) -> int:
    """Tokens of the prompt and the gold document, as the replay's prompt and chooser see them."""
    document = target.tokenizer.encode(gold_text(instance), add_special_tokens=False)
    return len(prompt_ids(target, instance)) + len(document)


def dry_peak_live(target: Target, instance: Any) -> int:
    """Peak live tokens of the gold trace under `window`, from the controller alone (no model).

    Counted before each step's prunes apply, so it bounds the runtime's peak from above.
    """
    tools = builtin_tools(table=instance.table)
    controller = Controller(
        target.fmt, replay_rules(target, "exact"), target.tokenizer, tools=tools
    )
    chooser = Replay(target.tokenizer, gold_text(instance), controller)
    controller.start(prompt_ids(target, instance))
    peak = controller.num_live
    while not controller.finished:
        actions = controller.on_tokens([chooser(None)])
        peak = max(peak, controller.num_live)
        for action in actions:
            if isinstance(action, Prune):
                controller.applied_prune(action, len(action.indices), 0, 0.0)
    return peak


def auto_budget(target: Target, family: str, seed: int) -> int:
    """A live budget for `family`: the dry peak of a small trace plus 10 %, in steps of 16."""
    peak = dry_peak_live(target, make(family, REFERENCE_SIZE, seed))
    return math.ceil(peak * 1.1 / 16) * 16


def instance_for(target: Target, family: str, num_tokens: int, seed: int) -> Any:
    """An instance of `family` whose gold trace has >= `num_tokens` tokens, sized from a sample."""
    per_unit = trace_tokens(target, make(family, 4, seed)) / 4
    size = max(1, math.ceil(num_tokens / per_unit))
    instance = make(family, size, seed)
    while trace_tokens(target, instance) < num_tokens:
        size += max(1, size // 20)
        instance = make(family, size, seed)
    return instance
