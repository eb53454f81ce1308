"""The decode loop: prefill, pick a token, let the controller read it, apply what it asks.

Tokens the loop has chosen but not yet run through the model wait in `pending`; one forward
call runs them all just before the next pick. That single rule gives tool results their one
prefill, grammar-forced tokens their fast-forward, and prunes their fresh logits for free.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from thread.cache import KVCacheManager
from thread.controller import Controller, Prune, Write

logger = logging.getLogger(__name__)


class BudgetExceeded(RuntimeError):
    """The next step would need more live tokens than `max_live_tokens` allows."""


@dataclass
class Sampling:
    """How the next token is picked. `temperature == 0` is greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature} must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1]")


@dataclass
class RunStats:
    status: str = "running"  # done | eos | max_tokens | budget | format_error | error | interrupted
    message: str | None = None
    num_decoded: int = 0
    num_forced: int = 0
    seconds: float = 0.0
    live_sizes: list[int] = field(default_factory=list)


def pick(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None) -> int:
    """Greedy, or temperature + nucleus sampling, over the last position's logits `[vocab]`."""
    if sampling.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        outside = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > sampling.top_p
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


@dataclass
class DecodeLoop:
    """One run of a model under a controller, over a KV cache it owns."""

    model: Any
    controller: Controller
    sampling: Sampling = field(default_factory=Sampling)
    constraint: Any = None
    max_live_tokens: int | None = None
    max_new_tokens: int = 4096
    eos_ids: frozenset[int] = frozenset()
    chooser: Callable[[torch.Tensor], int] | None = None  # replaces sampling (teacher forcing)

    def __post_init__(self) -> None:
        self.cache = KVCacheManager(self.model)
        self.pending: list[int] = []  # transcript indices chosen but not yet forwarded
        self.logits: torch.Tensor | None = None  # next-token logits of the last live slot
        self.stats = RunStats()
        self.generator = None
        if self.sampling.seed is not None:
            self.generator = torch.Generator().manual_seed(self.sampling.seed)

    def run(self, prompt_ids: list[int]) -> RunStats:
        t0 = time.perf_counter()
        ctl, ledger = self.controller, self.controller.ledger
        try:
            # 1) prefill the prompt
            ctl.start(prompt_ids)
            self.pending = list(range(len(prompt_ids)))
            with ledger.phase("prefill"):
                logits = self.flush()
            ledger.on_prefill(len(prompt_ids), self.cache.num_live)

            # 2) decode until the document is complete, EOS, a limit, or a fault
            while not ctl.finished:
                if self.stats.num_decoded >= self.max_new_tokens:
                    self.stats.status = "max_tokens"
                    break
                ctl.advance()
                token = self.choose(logits)
                if token in self.eos_ids:
                    self.stats.status = "eos"
                    break
                self.stats.num_decoded += 1
                ledger.on_decode(ctl.num_live, len(ctl.transcript))
                self.accept([token], "model")
                self.fast_forward()
                with ledger.phase("decode"):
                    logits = self.flush()
                self.stats.live_sizes.append(self.cache.num_live)
            if ctl.finished:
                self.stats.status = "done" if ctl.parser.status == "done" else "format_error"
                if ctl.parser.error is not None:
                    self.stats.message = str(ctl.parser.error)
        except BudgetExceeded as exc:
            self.stats.status, self.stats.message = "budget", str(exc)
            ctl.trace.write("error", message=str(exc), where="budget")
        except KeyboardInterrupt:
            self.stats.status = "interrupted"
            ctl.trace.write("error", message="interrupted", where="decode loop")
            raise
        except Exception as exc:
            self.stats.status, self.stats.message = "error", f"{type(exc).__name__}: {exc}"
            ctl.trace.write("error", message=self.stats.message, where=f"decode step {ctl.step}")
            raise
        finally:
            if not ctl.finished:
                ctl.close()
            self.stats.seconds = time.perf_counter() - t0
        return self.stats

    # 3) one step's pieces
    def choose(self, logits: torch.Tensor) -> int:
        if self.constraint is not None:
            mask = self.constraint.mask()
            logits = logits.clone()
            logits[: mask.shape[0]][~mask] = float("-inf")
            logits[mask.shape[0] :] = float("-inf")
        if self.chooser is not None:
            return self.chooser(logits)
        return pick(logits, self.sampling, self.generator)

    def accept(self, ids: list[int], source: str) -> int:
        """Give chosen tokens to the controller (and grammar), queue them, apply the actions.

        Returns how many were taken. A runtime write (a tool result) ends the batch: forced
        tokens computed before it no longer follow the text, and are asked for again.
        """
        for n, token_id in enumerate(ids, start=1):
            if self.controller.finished:
                return n - 1
            if self.constraint is not None:
                self.constraint.consume([token_id])
            self.pending.append(len(self.controller.transcript))
            wrote = False
            for action in self.controller.on_tokens([token_id], source):
                if isinstance(action, Write):
                    self.apply_write(action)
                    wrote = True
                else:
                    self.apply_prune(action)
            if wrote:
                return n
        return len(ids)

    def fast_forward(self) -> None:
        """Feed tokens the grammar forces, without a model pick; they share the next forward."""
        while self.constraint is not None and not self.controller.finished:
            forced = self.constraint.forced()
            if not forced:
                return
            num_taken = self.accept(forced, "forced")
            self.stats.num_forced += num_taken
            self.controller.ledger.on_forced(num_taken)

    def apply_write(self, action: Write) -> None:
        if action.num_dropped:
            dropped = self.pending[-action.num_dropped :]
            del self.pending[-action.num_dropped :]
            assert dropped and dropped[0] == action.indices[0], f"{dropped=} {action.indices[:1]=}"
            if self.constraint is not None:
                self.constraint.rollback(action.num_dropped)
        if self.constraint is not None:
            self.constraint.consume(action.ids)
        self.pending += action.indices

    def apply_prune(self, action: Prune) -> None:
        last = max(action.indices)
        ahead = [i for i in self.pending if i <= last]
        if ahead:
            self.pending = [i for i in self.pending if i > last]
            self.forward(ahead, last_only=True)
        with self.controller.ledger.phase("prune"):
            result = self.cache.prune(action.indices, action.decision.mode)
        self.controller.applied_prune(action, result.freed, result.reencoded, result.seconds)
        if self.pending:
            return
        if result.logits is not None:  # exact mode re-encoded the last live token already
            self.logits = result.logits
        elif result.freed:  # the logits in hand saw the pruned tokens: recompute the last one
            index = self.cache.live_indices[-1]
            self.cache.crop_last(1)
            self.pending = [index]

    def flush(self) -> torch.Tensor:
        if self.pending:
            indices, self.pending = self.pending, []
            self.logits = self.forward(indices, last_only=True)[-1]
        return self.logits

    def forward(self, indices: list[int], *, last_only: bool = False) -> torch.Tensor:
        """Run transcript tokens through the model into the cache; logits `[n, vocab]`."""
        if self.max_live_tokens is not None and self.cache.num_live + len(indices) > self.max_live_tokens:
            paths = self.controller.open_paths
            node = f"task {paths[-1]}" if paths else "(document, outside any task)"
            raise BudgetExceeded(
                f"live context would reach {self.cache.num_live + len(indices)} tokens, over the budget "
                f"max_live_tokens={self.max_live_tokens}, while generating node {node}"
            )
        ids = [self.controller.transcript.ids[i] for i in indices]
        with torch.inference_mode():
            return self.cache.forward(ids, indices, last_only=last_only)
