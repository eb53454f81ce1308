"""KV-cache manager against its references, over random prune schedules on tiny random models.

keep: a forward over the full cache whose 4D mask hides the freed slots. shift: the same, with
the kept keys turned to the compacted positions by a separate two-step rotation (undo the old
angle, apply the new one). exact: a fresh forward over the live tokens at positions 0..n-1.
"""

from __future__ import annotations

import random
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import (
    DynamicCache,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from thread.cache import CacheError, KVCacheManager, UnsupportedModelError

TOLERANCE = 1e-4
FIXTURE_CHECK = HealthCheck.function_scoped_fixture  # the module-scoped models are shared on purpose
VOCAB = 128
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, {}),
    "llama3": (LlamaConfig, LlamaForCausalLM, {"rope_parameters": LLAMA3_ROPE}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, {}),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, {"head_dim": 16}),
}


def tiny_model(family: str, num_layers: int = 2, **overrides) -> torch.nn.Module:
    config_class, model_class, extra = FAMILIES[family]
    config = config_class(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        initializer_range=0.2,  # peaked attention, so a wrong slot or angle shows in the logits
        **{**extra, **overrides},
    )
    torch.manual_seed(0)
    return model_class(config).eval()


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    return {family: tiny_model(family) for family in FAMILIES}


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class MaskedReference:
    """Never frees a slot: hides freed ones with a 4D mask; `shift` turns the live keys to their ranks."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.rotary = model.base_model.rotary_emb
        self.cache = DynamicCache(config=model.config)
        self.alive = torch.zeros(0, dtype=torch.bool)
        self.positions = torch.zeros(0, dtype=torch.int64)
        self.next_position = 0

    @torch.no_grad()
    def forward(self, token_ids: list[int]) -> torch.Tensor:
        q, past = len(token_ids), self.alive.numel()
        causal = torch.ones(q, q, dtype=torch.bool).tril()
        visible = torch.cat([self.alive.expand(q, past), causal], dim=1)  # [q, past + q]
        positions = torch.arange(self.next_position, self.next_position + q)
        out = self.model(
            input_ids=torch.tensor([token_ids]),
            position_ids=positions[None],
            attention_mask=visible[None, None],
            cache=self.cache,
            use_cache=True,
        )
        self.alive = torch.cat([self.alive, torch.ones(q, dtype=torch.bool)])
        self.positions = torch.cat([self.positions, positions])
        self.next_position += q
        return out.logits[0]

    def prune(self, indices: list[int], mode: str) -> None:
        self.alive[indices] = False
        if mode == "shift":
            live = self.alive.nonzero().squeeze(1)
            new = torch.arange(live.numel())
            for layer in self.cache.layers:
                keys = layer.keys[..., live, :]
                unturned = self._turn(keys, self.positions[live], -1)
                layer.keys[..., live, :] = self._turn(unturned, new, 1)
            self.positions[live] = new
            self.next_position = live.numel()

    def _turn(self, keys: torch.Tensor, positions: torch.Tensor, sign: int) -> torch.Tensor:
        cos, sin = self.rotary(keys, positions[None])  # [1, m, head_dim]
        scale = self.rotary.attention_scaling
        cos, sin = cos[:, None] / scale, sin[:, None] / scale
        return keys * cos + sign * rotate_half(keys) * sin


@torch.no_grad()
def fresh_logits(model: torch.nn.Module, token_ids: list[int]) -> torch.Tensor:
    ids = torch.tensor([token_ids])
    positions = torch.arange(len(token_ids))[None]
    mask = torch.ones_like(ids)  # without it, gapped positions would read as packed sequences
    return model(input_ids=ids, position_ids=positions, attention_mask=mask).logits[0]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


tokens = st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=12)
spans = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 8)), min_size=1, max_size=3)
schedules = st.lists(st.tuples(tokens, spans), min_size=1, max_size=4)
queries = st.lists(st.integers(0, VOCAB - 1), min_size=1, max_size=3)


def span_indices(live: list[int], chosen: list[tuple[int, int]]) -> list[int]:
    """Transcript indices covered by spans of live slots (start picked modulo num_live)."""
    picked: set[int] = set()
    for start, length in chosen:
        start %= len(live)
        picked.update(live[start : start + length])
    return sorted(picked)


def run_schedule(manager, reference, schedule, query, mode: str, rng: random.Random):
    """Apply the same appends and prunes to both sides; return both logits for the query."""
    written: list[int] = []
    for token_ids, chosen in schedule:
        manager.forward(token_ids)
        if reference is not None:
            reference.forward(token_ids)
        written += token_ids
        if manager.num_live == 0:
            continue
        pruned = span_indices(manager.live_indices, chosen)
        step_mode = rng.choice(["keep", "shift"]) if mode == "mixed" else mode
        result = manager.prune(pruned, step_mode)
        assert result.freed == len(pruned), f"{result=} {pruned=}"
        if reference is not None:
            reference.prune(pruned, step_mode)
    return manager.forward(query), (reference.forward(query) if reference is not None else None)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("mode", ["keep", "shift", "mixed"])
@settings(max_examples=20, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(schedule=schedules, query=queries, seed=st.integers(0, 2**16))
def test_keep_and_shift_match_the_masked_reference(models, family, mode, schedule, query, seed):
    model = models[family]
    manager = KVCacheManager(model)
    reference = MaskedReference(model)
    got, want = run_schedule(manager, reference, schedule, query, mode, random.Random(seed))
    assert max_diff(got, want) <= TOLERANCE
    if mode == "shift":
        assert manager.live_positions == list(range(manager.num_live))


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=20, deadline=None, suppress_health_check=[FIXTURE_CHECK])
@given(schedule=schedules, query=queries)
def test_exact_matches_a_fresh_forward_over_the_kept_tokens(models, family, schedule, query):
    model = models[family]
    manager = KVCacheManager(model)
    got, _ = run_schedule(manager, None, schedule, query, "exact", random.Random(0))
    want = fresh_logits(model, manager.live_token_ids)[-len(query) :]
    assert max_diff(got, want) <= TOLERANCE
    assert manager.live_positions == list(range(manager.num_live))


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=10, deadline=None)
@given(schedule=schedules, query=queries)
def test_shift_in_a_one_layer_model_matches_a_fresh_forward(family, schedule, query):
    model = one_layer_models.setdefault(family, tiny_model(family, num_layers=1))
    manager = KVCacheManager(model)
    got, _ = run_schedule(manager, None, schedule, query, "shift", random.Random(0))
    want = fresh_logits(model, manager.live_token_ids)[-len(query) :]
    assert max_diff(got, want) <= TOLERANCE


one_layer_models: dict[str, torch.nn.Module] = {}


@pytest.mark.parametrize("mode", ["keep", "shift", "exact"])
def test_a_hundred_prunes_in_a_row_stay_within_the_bound(mode):
    model, rng = tiny_model("llama3"), random.Random(7)
    manager = KVCacheManager(model)
    reference = MaskedReference(model) if mode != "exact" else None
    for step in range(100):
        token_ids = [rng.randrange(VOCAB) for _ in range(rng.randint(2, 8))]
        manager.forward(token_ids)
        if reference is not None:
            reference.forward(token_ids)
        live = manager.live_indices
        start = rng.randrange(len(live))
        pruned = live[start : start + rng.randint(1, 4)]
        manager.prune(pruned, mode)
        if reference is not None:
            reference.prune(pruned, mode)
    query = [rng.randrange(VOCAB) for _ in range(2)]
    got = manager.forward(query)
    if reference is not None:
        want = reference.forward(query)
    else:
        want = fresh_logits(model, manager.live_token_ids)[-2:]
    assert max_diff(got, want) <= TOLERANCE
    assert len(manager.prunes) == 100
    if mode != "keep":  # positions are reused: a long run stays below max_position_embeddings
        assert manager.next_index > model.config.max_position_embeddings
        assert max(manager.live_positions) == manager.num_live - 1


def test_the_tiny_models_tell_shift_from_exact(models):
    # guards the references above: pruning a middle span must change a multi-layer model's view
    model = models["llama"]
    token_ids = list(range(5, 45))
    shifted, exact = KVCacheManager(model), KVCacheManager(model)
    for manager, mode in ((shifted, "shift"), (exact, "exact")):
        manager.forward(token_ids)
        manager.prune(range(10, 20), mode)
    assert max_diff(shifted.forward([3]), exact.forward([3])) > 1e-2


def test_exact_after_shift_reencodes_from_the_first_shifted_slot(models):
    model = models["qwen3"]
    manager = KVCacheManager(model)
    manager.forward(list(range(30)))
    manager.prune(range(5, 10), "shift")
    result = manager.prune([29], "exact")  # a tail prune, but slots 5.. were not a clean encode
    assert result.reencoded == 25 - 5 - 1
    assert max_diff(result.logits, fresh_logits(model, manager.live_token_ids)[-1]) <= TOLERANCE
    got = manager.forward([7])
    assert max_diff(got, fresh_logits(model, manager.live_token_ids)[-1:]) <= TOLERANCE


def test_exact_tail_prune_on_a_clean_cache_reencodes_nothing(models):
    manager = KVCacheManager(models["llama"])
    manager.forward(list(range(20)))
    result = manager.prune(range(15, 20), "exact")
    assert (result.freed, result.reencoded, result.logits) == (5, 0, None)
    assert manager.live_indices == list(range(15)) and manager.next_position == 15


def test_slot_table_tracks_indices_positions_and_tokens(models):
    manager = KVCacheManager(models["llama"])
    manager.forward([1, 2, 3, 4], indices=[10, 11, 13, 14])
    manager.forward([5])
    assert manager.live_indices == [10, 11, 13, 14, 15]
    manager.prune([11, 13, 12, 9], "keep")  # 12 and 9 were never live: skipped
    assert (manager.live_token_ids, manager.live_positions) == ([1, 4, 5], [0, 3, 4])
    assert manager.cache.get_seq_length() == 3
    manager.forward([6])
    assert manager.live_positions == [0, 3, 4, 5]
    manager.prune([10], "shift")
    assert manager.live_positions == [0, 1, 2] and manager.live_indices == [14, 15, 16]


@pytest.mark.parametrize("mode", ["keep", "shift", "exact"])
def test_prune_works_on_a_cache_filled_under_inference_mode(models, mode):
    manager = KVCacheManager(models["llama"])
    with torch.inference_mode():
        manager.forward(list(range(12)))
    manager.prune([2, 3], mode)  # in-place surgery on inference tensors, outside inference mode
    assert manager.num_live == 10


def test_crop_last_undoes_appended_tokens(models):
    model = models["qwen2"]
    manager = KVCacheManager(model)
    manager.forward([1, 2, 3, 4, 5])
    manager.crop_last(2)
    assert manager.live_indices == [0, 1, 2] and manager.next_index == 3
    logits = manager.forward([9])
    assert max_diff(logits, fresh_logits(model, [1, 2, 3, 9])[-1:]) <= TOLERANCE


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.prune([0], "compress"), "mode 'compress'"),
        (lambda m: m.prune([50], "keep"), "never appended"),
        (lambda m: m.forward([VOCAB]), "outside [0, 128)"),
        (lambda m: m.forward([]), "token_ids is empty"),
        (lambda m: m.forward([1, 2], indices=[4, 3]), "must increase"),
        (lambda m: m.forward([1], indices=[2]), "must increase"),
        (lambda m: m.crop_last(9), "crop_last: n=9"),
    ],
)
def test_misuse_raises_a_clear_error(models, call, message):
    manager = KVCacheManager(models["llama"])
    manager.forward([1, 2, 3, 4])
    with pytest.raises(CacheError, match=re.escape(message)):
        call(manager)


def test_mistral_without_sliding_window_is_accepted():
    config = MistralConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=None,
    )  # fmt: skip
    manager = KVCacheManager(MistralForCausalLM(config).eval())
    manager.forward([1, 2, 3])
    assert manager.prune([1], "shift").freed == 1


def refusal_cases():
    from transformers import Gemma3TextConfig, GPT2Config, Qwen3NextConfig

    small = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2)
    heads = dict(num_attention_heads=4, num_key_value_heads=2)
    sliding = MistralConfig(**small, **heads, sliding_window=16)
    yield "mistral-sliding", sliding, "DynamicSlidingWindowLayer"
    yield "gemma3", Gemma3TextConfig(**small, **heads), "DynamicSlidingWindowLayer"
    yield "qwen3-next", Qwen3NextConfig(**small, **heads), "LinearAttentionLayer"
    gpt2 = GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=1, n_head=4, bos_token_id=0, eos_token_id=0)
    yield "gpt2", gpt2, "'gpt2' is not supported"
    dynamic = {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}
    yield "dynamic-rope", LlamaConfig(**small, **heads, rope_parameters=dynamic), "rope_type 'dynamic'"


@pytest.mark.parametrize("name, config, message", list(refusal_cases()))
def test_unprunable_models_are_refused_naming_the_layer_type(name, config, message):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(config)
    with pytest.raises(UnsupportedModelError, match=message):
        KVCacheManager(model)
