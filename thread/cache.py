"""KV-cache manager: which transcript token every cache slot holds, and pruning of any slots.

Wraps a transformers `DynamicCache` for one sequence. `prune` frees any set of slots in one of
three modes: `keep` (positions keep their gaps), `shift` (kept keys re-rotated to contiguous
positions, no recompute) and `exact` (the kept suffix after the first gap is re-encoded). It
does not decide what to prune (the controller does) nor sample tokens (the runner does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from thread import kernels

logger = logging.getLogger(__name__)

MODES = ("keep", "shift", "exact")
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
# RoPE variants whose frequencies do not depend on the sequence length (not dynamic/longrope)
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn")


class CacheError(ValueError):
    """Misuse of the cache manager: a bad index, token, count or mode."""


class UnsupportedModelError(CacheError):
    """The model's cache layers or position scheme cannot be pruned slot by slot."""


@dataclass(frozen=True)
class PruneResult:
    freed: int  # slots freed
    reencoded: int  # tokens re-encoded (exact mode)
    seconds: float
    mode: str
    # next-token logits [vocab] at the last live slot, when the prune recomputed them
    logits: torch.Tensor | None = None


class SlotTable:
    """Per-slot bookkeeping of one sequence: token id, transcript index and position id.

    Rows are slots in cache order. A batch of sequences would hold one table each, and paged
    storage would add a slot-to-page map here; the tensor surgery lives in `KVCacheManager`.
    """

    def __init__(self) -> None:
        empty = torch.empty(0, dtype=torch.int64)
        self.token_ids, self.indices, self.positions = empty, empty.clone(), empty.clone()

    @property
    def num_slots(self) -> int:
        return self.indices.numel()

    def append(self, token_ids: list[int], indices: list[int], positions: torch.Tensor) -> None:
        self.token_ids = torch.cat([self.token_ids, torch.tensor(token_ids, dtype=torch.int64)])
        self.indices = torch.cat([self.indices, torch.tensor(indices, dtype=torch.int64)])
        self.positions = torch.cat([self.positions, positions.to(torch.int64)])

    def select(self, slots: torch.Tensor) -> None:
        """Keep only the given slots, in the given order."""
        self.token_ids = self.token_ids[slots]
        self.indices = self.indices[slots]
        self.positions = self.positions[slots]

    def truncate(self, num_slots: int) -> None:
        self.select(torch.arange(num_slots))

    def slots_of(self, indices: Iterable[int]) -> torch.Tensor:
        """Bool mask [num_slots]: the slots holding any of these transcript indices."""
        wanted = torch.as_tensor(list(indices), dtype=torch.int64)
        return torch.isin(self.indices, wanted)


def check_supported(model: torch.nn.Module) -> torch.nn.Module:
    """Refuse models whose cache cannot be pruned slot by slot; return the rotary embedding module."""
    config = model.config.get_text_config(decoder=True)
    model_type = getattr(config, "model_type", type(config).__name__)
    for layer_idx, layer in enumerate(DynamicCache(config=model.config).layers):
        if type(layer) is not DynamicLayer:
            raise UnsupportedModelError(
                f"model type {model_type!r}: cache layer {layer_idx} is {type(layer).__name__}; only "
                "full-attention DynamicLayer caches can be pruned (no sliding-window, linear-attention, "
                "recurrent or hybrid layers)"
            )
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported: its position scheme is not verified for "
            f"re-rotation; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    rotary = getattr(model.base_model, "rotary_emb", None)
    rope_type = getattr(rotary, "rope_type", None)
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"model type {model_type!r}: rope_type {rope_type!r} is not supported; its frequencies "
            f"must not depend on the sequence length ({', '.join(SUPPORTED_ROPE_TYPES)})"
        )
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if rotary.inv_freq.numel() * 2 != head_dim:
        raise UnsupportedModelError(
            f"model type {model_type!r}: RoPE covers {rotary.inv_freq.numel() * 2} of {head_dim} "
            "head dims; partial rotary embeddings are not supported"
        )
    return rotary


class KVCacheManager:
    """A model's `DynamicCache` for one sequence, with the slot table that says what each slot holds."""

    def __init__(self, model: torch.nn.Module, *, device: torch.device | str | None = None):
        self.rotary = check_supported(model)
        self.model = model
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.vocab_size = model.config.get_text_config(decoder=True).vocab_size
        self.cache = DynamicCache(config=model.config)
        self.slots = SlotTable()
        self.next_index = 0  # transcript index of the next appended token, by default
        self.next_position = 0  # position id of the next appended token
        # length of the live prefix that equals a fresh encode of its tokens at 0..num_clean-1
        self.num_clean = 0
        self.prunes: list[PruneResult] = []

    @property
    def num_live(self) -> int:
        return self.slots.num_slots

    @property
    def live_token_ids(self) -> list[int]:
        return self.slots.token_ids.tolist()

    @property
    def live_indices(self) -> list[int]:
        return self.slots.indices.tolist()

    @property
    def live_positions(self) -> list[int]:
        return self.slots.positions.tolist()

    # appending

    @torch.inference_mode()
    def forward(
        self, token_ids: list[int], indices: list[int] | None = None, *, last_only: bool = False
    ) -> torch.Tensor:
        """Append tokens and return their next-token logits [n, vocab] ([1, vocab] if `last_only`)."""
        token_ids = list(token_ids)
        indices = self._check_append(token_ids, indices)
        return self._append(token_ids, indices, last_only=last_only)

    def _check_append(self, token_ids: list[int], indices: list[int] | None) -> list[int]:
        if not token_ids:
            raise CacheError("forward: token_ids is empty; pass at least one token")
        bad = [t for t in token_ids if not 0 <= t < self.vocab_size]
        if bad:
            raise CacheError(f"forward: token ids {bad[:5]} are outside [0, {self.vocab_size})")
        if indices is None:
            return list(range(self.next_index, self.next_index + len(token_ids)))
        indices = list(indices)
        last = int(self.slots.indices[-1]) if self.num_live else -1
        if len(indices) != len(token_ids):
            raise CacheError(f"forward: {len(indices)} indices for {len(token_ids)} tokens")
        if any(b <= a for a, b in zip([last, *indices], indices)):
            raise CacheError(
                f"forward: indices {indices[:5]}... must increase and exceed the last live index {last}"
            )
        return indices

    def _append(self, token_ids: list[int], indices: list[int], *, last_only: bool) -> torch.Tensor:
        n = len(token_ids)
        positions = torch.arange(self.next_position, self.next_position + n)
        out = self.model(
            input_ids=torch.tensor([token_ids], device=self.device),
            position_ids=positions[None].to(self.device),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=1 if last_only else 0,
        )
        if self.num_clean == self.num_live == self.next_position:
            self.num_clean += n
        self.slots.append(token_ids, indices, positions)
        self.next_index = indices[-1] + 1
        self.next_position += n
        return out.logits[0]  # [n or 1, vocab]

    def crop_last(self, n: int) -> None:
        """Undo the last `n` live slots: their positions and transcript indices are issued again."""
        if not 0 <= n <= self.num_live:
            raise CacheError(f"crop_last: n={n} is outside [0, num_live={self.num_live}]")
        if n == 0:
            return
        keep = self.num_live - n
        self.next_position = int(self.slots.positions[keep])
        self.next_index = int(self.slots.indices[keep])
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[..., :keep, :], layer.values[..., :keep, :]
        self.slots.truncate(keep)
        self.num_clean = min(self.num_clean, keep)

    # pruning

    @torch.inference_mode()
    def prune(self, indices: Iterable[int], mode: str) -> PruneResult:
        """Free the live slots holding these transcript indices (indices already pruned are skipped)."""
        if mode not in MODES:
            raise CacheError(f"prune: mode {mode!r} is not one of {MODES}")
        start_time = time.perf_counter()
        indices = list(indices)
        unknown = [i for i in indices if not 0 <= i < self.next_index]
        if unknown:
            raise CacheError(
                f"prune: transcript indices {unknown[:5]} were never appended (next index {self.next_index})"
            )
        drop = self.slots.slots_of(indices)  # [num_live] bool
        freed, reencoded, logits = int(drop.sum()), 0, None
        if freed and mode == "exact":
            reencoded, logits = self._prune_exact(drop)
        elif freed:
            self._prune_in_place(drop, rotate=mode == "shift")
        result = PruneResult(freed, reencoded, time.perf_counter() - start_time, mode, logits)
        self.prunes.append(result)
        logger.debug(
            "prune %s: freed %d, re-encoded %d, live %d", mode, freed, reencoded, self.num_live
        )
        return result

    def _prune_in_place(self, drop: torch.Tensor, *, rotate: bool) -> None:
        # 1) compact: the kept slots after the first gap move down over the freed ones
        kept = (~drop).nonzero().squeeze(1)  # [num_kept] old slot numbers
        first_gap = int(drop.nonzero()[0])
        moved = kept[first_gap:].to(self.device)
        for layer in self.cache.layers:
            layer.keys = kernels.compact(layer.keys, moved, first_gap)
            layer.values = kernels.compact(layer.values, moved, first_gap)
        self.slots.select(kept)
        self.num_clean = min(self.num_clean, first_gap)
        if not rotate:
            return

        # 2) shift: every kept key turns from its old position to its rank, R(new - old)
        old = self.slots.positions
        new = torch.arange(self.num_live)
        delta = new - old
        changed = delta.nonzero()
        if changed.numel():
            start = int(changed[0])
            for layer in self.cache.layers:
                kernels.rerotate(layer.keys, start, delta[start:], self.rotary.inv_freq)
        self.slots.positions = new
        self.next_position = self.num_live

    def _prune_exact(self, drop: torch.Tensor) -> tuple[int, torch.Tensor | None]:
        # 1) crop to the first slot that is freed now or was not a clean encode already
        first_gap = int(drop.nonzero()[0])
        start = min(first_gap, self.num_clean)
        suffix = (~drop).nonzero().squeeze(1)
        suffix = suffix[suffix >= start]
        token_ids = self.slots.token_ids[suffix].tolist()
        indices = self.slots.indices[suffix].tolist()
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[..., :start, :], layer.values[..., :start, :]
        self.slots.truncate(start)
        self.next_position = self.num_clean = start

        # 2) re-encode the kept suffix at contiguous positions, as if the freed part was never written
        if not token_ids:
            return 0, None
        next_index = self.next_index  # a freed tail keeps its indices issued
        logits = self._append(token_ids, indices, last_only=True)
        self.next_index = next_index
        return len(token_ids), logits[-1]
