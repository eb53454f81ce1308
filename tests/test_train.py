"""Smoke test of the trainer: a tiny config for a few steps, saved and loaded back with HF."""

from __future__ import annotations

import json
import random

import pytest

from thread.tasks import make, samples
from thread.train import SCAFFOLD, BatchSampler, TrainConfig, build_tokenizer, encoder_for, train


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(num_texts=200)


def test_tokenizer_learns_scaffolding_runs_and_keeps_digits_and_keys_single(tokenizer) -> None:
    text = (
        '{"thought": "12 left", "subtasks": [{"thought": "3 left", "tooluse": {"tool_name": "lookup", '
        '"parameters": {"key": "k7"}'
    )
    assert tokenizer.encode(text).tokens == [
        '{"thought": "', "1", "2", " left", '", ', '"subtasks": [', '{"thought": "', "3", " left",
        '", "tooluse": {"tool_name": "lookup", "parameters": {"key": "', "k", "7", '"}',
    ]


def test_no_token_spans_a_task_start_or_a_separator(tokenizer) -> None:
    for token in set(tokenizer.get_vocab()) - {"<pad>", "<unk>"}:
        assert ", {" not in token and '", "subtasks' not in token and '], "conclusion' not in token, token
        assert len(token) == 1 or any(token in run for run in SCAFFOLD), token  # merges stay inside runs


def test_every_prune_falls_on_token_boundaries(tokenizer) -> None:
    encode = encoder_for(tokenizer)
    for family, size in (("arith", 8), ("chain", 12)):
        for seed in range(3):
            views = samples.episode_views(make(family, size, seed), encode)  # raises if not
            assert len(views) > 1


def test_batch_masks_everything_but_model_tokens(tokenizer) -> None:
    cfg = TrainConfig(tokens_per_step=1024)
    next_batch = BatchSampler(random.Random(0), encoder_for(tokenizer), cfg)
    for _ in range(6):
        ids, mask, labels = next_batch()
        assert ids.shape == labels.shape == mask.shape
        assert ids.numel() <= cfg.tokens_per_step or len(ids) == 1
        trained = labels != -100
        assert 0 < int(trained.sum()) < int(mask.sum())
        assert not bool((trained & (mask == 0)).any())
        assert bool((ids[trained] == labels[trained]).all())
        assert not bool(trained[:, 0].any())  # the prompt is never a target


@pytest.mark.slow
def test_train_few_steps_saves_a_loadable_model(tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = TrainConfig(
        out=str(tmp_path), steps=3, hidden=32, layers=1, heads=2, intermediate=64,
        tokens_per_step=512, threads=1, tokenizer_texts=100,
    )
    stats = train(cfg)
    assert stats["steps"] == 3 and stats["tokens"] > 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert model.config.max_position_embeddings == cfg.context_window
    text = 'follow 3 hops from k1\n{"reasoning": ['
    assert tok.decode(tok(text)["input_ids"]) == text
    meta = json.loads((tmp_path / "thread.json").read_text())
    assert meta["rules"] == "window" and meta["prompt_template"] == "{task}\n"
