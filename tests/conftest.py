"""Shared fixtures: a real BPE tokenizer (SmolLM2's) and tiny random-weight Llama models."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer: real BPE merges such as `"},` and `"]}`."""
    from transformers import AutoTokenizer

    from thread.models import cached_folder, convert_gguf, resolve

    source = resolve("smollm2")
    folder = cached_folder(source) or convert_gguf(source)
    return AutoTokenizer.from_pretrained(folder)


def make_tiny_llama(vocab_size: int, *, layers: int = 2, max_positions: int = 4096, seed: int = 0):
    """A random-weight Llama small enough to decode hundreds of tokens in a second."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_llama(smollm2_tokenizer):
    return make_tiny_llama(len(smollm2_tokenizer))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: intra-op threads only add overhead, and the machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
