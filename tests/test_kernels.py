"""Cache kernels: the torch references against plain definitions, Triton against the references.

Triton runs here under TRITON_INTERPRET=1 on CPU tensors, when the optional `triton` extra is
installed; without it those tests skip. The dispatch tests need neither.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from thread import kernels

HAVE_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAVE_TRITON, reason="triton not installed (`triton` extra)")
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
}


def random_cache(num_slots: int, head_dim: int = 16, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, num_slots, head_dim, generator=generator)  # [B, H, S, D]


def random_prune(num_slots: int, seed: int) -> tuple[torch.Tensor, int]:
    """Kept slots after the first freed one, and that first freed slot."""
    generator = torch.Generator().manual_seed(seed)
    drop = torch.rand(num_slots, generator=generator) < 0.4
    drop[int(torch.randint(num_slots, (1,), generator=generator))] = True
    first_gap = int(drop.nonzero()[0])
    kept = (~drop).nonzero().squeeze(1)
    return kept[kept > first_gap], first_gap


def rotary(head_dim: int = 16) -> LlamaRotaryEmbedding:
    config = LlamaConfig(
        hidden_size=4 * head_dim, num_attention_heads=4, rope_parameters=LLAMA3_ROPE
    )
    return LlamaRotaryEmbedding(config)


def rotated_keys(
    raw: torch.Tensor, positions: torch.Tensor, rope: LlamaRotaryEmbedding
) -> torch.Tensor:
    cos, sin = rope(raw, positions[None])
    _, keys = apply_rotary_pos_emb(raw, raw, cos, sin)
    return keys


@pytest.mark.parametrize("seed", range(5))
def test_compact_reference_gathers_kept_slots_in_place(seed):
    x = random_cache(40, seed=seed)
    moved, start = random_prune(40, seed)
    want = torch.cat([x[..., :start, :], x[..., moved, :]], dim=-2)
    got = kernels.compact(x, moved, start, backend="reference")
    assert got.data_ptr() == x.data_ptr()
    assert torch.equal(got, want)


def test_compact_of_nothing_moved_only_cuts_the_tail():
    x = random_cache(10)
    got = kernels.compact(x, torch.empty(0, dtype=torch.int64), 7, backend="reference")
    assert torch.equal(got, x[..., :7, :])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_rerotate_reference_moves_keys_to_the_new_positions(dtype, tolerance):
    rope = rotary()
    raw = random_cache(30)
    old = torch.arange(30) * 7 + 3
    new = torch.arange(30)
    keys = rotated_keys(raw, old, rope).to(dtype)
    kernels.rerotate(keys, 4, (new - old)[4:], rope.inv_freq, backend="reference")
    unmoved, moved = rotated_keys(raw, old, rope)[..., :4, :], rotated_keys(raw, new, rope)[..., 4:, :]
    want = torch.cat([unmoved, moved], dim=-2)
    assert float((keys.float() - want).abs().max()) <= tolerance


def test_kernel_files_load_under_private_names_only():
    module = kernels.load_kernel_module("compact")
    assert module.__name__ == "thread._kernel_compact"
    assert module.__file__.endswith(os.path.join("kernels", "compact.py"))


def test_dispatch_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="kernel backend 'cuda'"):
        kernels.compact(random_cache(4), torch.tensor([3]), 1, backend="cuda")


@pytest.mark.skipif(HAVE_TRITON, reason="checks the error when triton is missing")
def test_asking_for_triton_without_it_is_an_error():
    with pytest.raises(RuntimeError, match="triton is not installed"):
        kernels.rerotate(random_cache(4), 0, torch.zeros(4), torch.ones(8), backend="triton")


@pytest.fixture(scope="module")
def interpreted():
    """Fresh copies of the kernel files, jitted for the Triton interpreter."""
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    yield {
        name: kernels.load_kernel_module(name, module_name=f"thread._kernel_{name}_interpreted")
        for name in ("compact", "rope")
    }
    if before is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = before


@needs_triton
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("head_dim", [16, 24])
def test_triton_compact_matches_the_reference(interpreted, seed, head_dim):
    module = interpreted["compact"]
    x = random_cache(100, head_dim=head_dim, seed=seed)  # > one block of slots, so blocks chain
    moved, start = random_prune(100, seed)
    want = module.compact_reference(x.clone(), moved, start)
    got = module.compact_triton(x, moved, start)
    assert got.data_ptr() == x.data_ptr()
    assert torch.equal(got, want)


@needs_triton
def test_triton_compact_on_a_cut_view(interpreted):
    # after one prune a layer's cache is a view with a longer slot stride; a second prune acts on it
    module = interpreted["compact"]
    x = module.compact_reference(random_cache(80), torch.arange(10, 80), 5)
    moved, start = random_prune(x.shape[-2], 3)
    want = module.compact_reference(x.clone(), moved, start)
    assert torch.equal(module.compact_triton(x, moved, start), want)


@needs_triton
@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.bfloat16, 2**-6)])
def test_triton_rerotate_matches_the_reference(interpreted, dtype, rtol):
    module, rope = interpreted["rope"], rotary(head_dim=24)
    keys = random_cache(70, head_dim=24).to(dtype)
    delta = -torch.randint(0, 5000, (60,))
    want = keys.clone()
    module.rerotate_reference(want, 10, delta, rope.inv_freq)
    module.rerotate_triton(keys, 10, delta, rope.inv_freq)
    # bf16: fp32 angles agree closely, but a rounding to bf16 may still land one ulp apart
    torch.testing.assert_close(keys.float(), want.float(), rtol=rtol, atol=1e-5)


@needs_triton
@pytest.mark.parametrize("mode", ["keep", "shift"])
def test_cache_manager_gives_the_same_logits_with_triton_kernels(interpreted, monkeypatch, mode):
    from transformers import LlamaForCausalLM

    from thread.cache import KVCacheManager

    config = LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_parameters=LLAMA3_ROPE,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()

    def run() -> torch.Tensor:
        manager = KVCacheManager(model)
        manager.forward(list(range(40)))
        manager.prune([*range(3, 9), *range(20, 24)], mode)
        manager.forward([5, 6, 7])
        manager.prune([30, 31, 41], mode)
        return manager.forward([9, 10])

    want = run()
    monkeypatch.setattr(kernels, "compact", interpreted["compact"].compact_triton)
    monkeypatch.setattr(kernels, "rerotate", interpreted["rope"].rerotate_triton)
    assert float((run() - want).abs().max()) <= 1e-5
