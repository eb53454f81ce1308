"""PENCIL through the runtime: the same controller, rules and cache paths as Thread-2, driven only
by declarations (grammars/pencil.toml, grammars/pencil.collapse.toml). After every token the live
context must equal PENCIL's reduction of the text written so far, `A [CALL] B [SEP] C [RETURN] D`
-> `A C D`, computed here by an independent reference over the marker-split text."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import strategies
import torch
from hypothesis import HealthCheck, given, settings

from tests.conftest import make_tiny_llama
from thread.controller import Controller
from thread.formats import load_format
from thread.replay import Replay
from thread.rules import load_rules
from thread.runner import DecodeLoop

FMT = load_format("pencil")
MARKERS = ["[CALL]", "[SEP]", "[RETURN]"]
SPLIT = re.compile(r"(\[CALL\]|\[SEP\]|\[RETURN\])")
DATA = Path(__file__).parent / "data" / "pencil"
END_OF_PROMPT = " <|endofprompt|> "
SLOW_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def reduce_pieces(text: str) -> list[str]:
    """PENCIL's rule applied each time a [RETURN] completes: the pieces (text between markers, and
    markers of calls still open) that stay, in order. A marker split across the end is still text."""
    out: list[str] = []
    calls: list[list[int | None]] = []  # [index of its [CALL], index of its [SEP] or None]
    for piece in filter(None, SPLIT.split(text)):
        if piece == "[CALL]":
            calls.append([len(out), None])
        elif piece == "[SEP]" and calls and calls[-1][1] is None:
            calls[-1][1] = len(out)
        elif piece == "[RETURN]" and calls and calls[-1][1] is not None:
            call_at, sep_at = calls.pop()
            out[call_at:] = out[sep_at + 1 :]
            continue
        out.append(piece)
    return out


def reduce(text: str) -> str:
    return "".join(reduce_pieces(text))


class CharTokenizer:
    """One token per character: every span edge is a token edge."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(map(chr, ids))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def marker_tokenizer(smollm2_tokenizer):
    """SmolLM2's BPE with the three markers as single added tokens, as PENCIL's vocabulary has them.
    A copy: the session fixture stays as other tests expect it."""
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.add_tokens(MARKERS, special_tokens=True)
    return tokenizer


@pytest.fixture(scope="module")
def marker_llama(marker_tokenizer):
    return make_tiny_llama(len(marker_tokenizer), max_positions=8192)


def live_text(ctl: Controller) -> str:
    doc = range(ctl.transcript.doc_start, len(ctl.transcript))
    return "".join(ctl.transcript.texts[i] for i in doc if ctl.is_live[i])


def rules_in_mode(mode: str, tmp_path: Path):
    """The shipped collapse rule set, with its mode changed: same rules, other cache surgery."""
    shipped = load_rules("collapse", FMT).path.read_text(encoding="utf-8")
    path = tmp_path / f"pencil.collapse-{mode}.toml"
    path.write_text(shipped.replace('mode = "exact"', f'mode = "{mode}"'), encoding="utf-8")
    rules = load_rules(path, FMT)
    assert [p.mode for p in rules.policies] == [mode]
    return rules


def feed_token_by_token(ctl: Controller, ids: list[int]) -> None:
    """Drive the controller as the runner does, checking the live context after every token."""
    for token_id in ids:
        for action in ctl.on_tokens([token_id]):
            ctl.applied_prune(action, len(action.indices), 0, 0.0)
        written = ctl.parser.text
        assert live_text(ctl) == reduce(written), written


# 1) torch-free: controller + rules over the transcript


def test_the_shipped_rule_set_reduces_the_papers_example():
    text = "A [CALL] B [SEP] C [RETURN] D"
    ctl = Controller(FMT, load_rules("collapse", FMT), CharTokenizer())
    ctl.start(CharTokenizer().encode("Q: "))
    prunes = [a for ch in text for a in ctl.on_tokens([ord(ch)])]

    (prune,) = prunes  # one decision, when the "]" of [RETURN] is written
    assert prune.decision.node == "0" and prune.decision.rule == "collapse:collapse"
    assert [text[a:b] for a, b in prune.decision.spans] == ["[CALL] B [SEP]", "[RETURN]"]
    assert len(ctl.transcript) == len("Q: ") + len(text)
    ctl.applied_prune(prune, len(prune.indices), 0, 0.0)
    assert live_text(ctl) == "A  C  D" and ctl.num_live == len("Q: A  C  D")


@given(strategies.pencil_texts())
@settings(max_examples=80, deadline=None)
def test_live_context_is_the_reduction_after_every_character(text):
    tokenizer = CharTokenizer()
    ctl = Controller(FMT, load_rules("collapse", FMT), tokenizer)
    ctl.start(tokenizer.encode("prompt"))
    feed_token_by_token(ctl, tokenizer.encode(text))
    ctl.close()
    assert ctl.parser.status == "done"
    assert live_text(ctl) == reduce(text) == ctl.parser.tree.reduced_text()


@given(strategies.pencil_texts())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_live_tokens_are_the_reduced_texts_tokens_with_marker_tokens(marker_tokenizer, text):
    ctl = Controller(FMT, load_rules("collapse", FMT), marker_tokenizer)
    ctl.start([])
    feed_token_by_token(ctl, marker_tokenizer.encode(text, add_special_tokens=False))
    live_ids = [ctl.transcript.ids[i] for i, live in enumerate(ctl.is_live) if live]
    assert live_ids == expected_ids(marker_tokenizer, text)


def test_rule_set_none_keeps_every_token():
    ctl = Controller(FMT, load_rules("none", FMT), CharTokenizer())
    ctl.start([])
    text = "A [CALL] B [SEP] C [RETURN] D"
    assert ctl.on_tokens(CharTokenizer().encode(text)) == []
    assert live_text(ctl) == text


def test_a_tokenizer_that_merges_a_marker_with_its_neighbours_keeps_the_boundary_tokens(smollm2_tokenizer):
    # Without added marker tokens SmolLM2 writes " [" (space of the outer text, "[" of the marker)
    # as one token; a token that straddles a pruned span's edge stays live.
    text = "a [CALL] x [SEP] y [RETURN] b"
    ctl = Controller(FMT, load_rules("collapse", FMT), smollm2_tokenizer)
    ctl.start([])
    ctl_ids = smollm2_tokenizer.encode(text, add_special_tokens=False)
    for action in ctl.on_tokens(ctl_ids):
        ctl.applied_prune(action, len(action.indices), 0, 0.0)
    assert reduce(text) == "a  y  b"
    assert live_text(ctl) == "a [ y [ b"


def expected_ids(tokenizer, text: str) -> list[int]:
    """The reduced text's tokens: each kept piece tokenized on its own, as the added marker tokens
    split the original text into pieces that the tokenizer never merges across."""
    return [i for piece in reduce_pieces(text) for i in tokenizer.encode(piece, add_special_tokens=False)]


# 2) with a model: teacher-forced replay through the decode loop and the KV cache


class CheckedReplay(Replay):
    """Replay that checks, before every pick, that the cache holds the reduced text so far."""

    def __init__(self, tokenizer, text, loop) -> None:
        super().__init__(tokenizer, text, loop.controller, eos_id=tokenizer.eos_token_id)
        self.loop = loop
        self.num_checked = 0
        self.max_live = 0

    def __call__(self, logits: torch.Tensor) -> int:
        cache, ctl = self.loop.cache, self.controller
        live = [i for i, is_live in enumerate(ctl.is_live) if is_live]
        assert cache.live_indices == live and not self.loop.pending
        assert cache.live_token_ids == [ctl.transcript.ids[i] for i in live]
        assert live_text(ctl) == reduce(ctl.parser.text)
        self.num_checked += 1
        self.max_live = max(self.max_live, cache.num_live)
        return super().__call__(logits)


def replay(tokenizer, model, prompt: str, text: str, rules) -> DecodeLoop:
    ctl = Controller(FMT, rules, tokenizer)
    loop = DecodeLoop(model, ctl, max_new_tokens=100_000, eos_ids=frozenset([tokenizer.eos_token_id]))
    loop.chooser = CheckedReplay(tokenizer, text, loop)
    loop.run(tokenizer.encode(prompt, add_special_tokens=False))
    return loop


def check_final_cache(loop: DecodeLoop, tokenizer, prompt: str, text: str) -> None:
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    assert loop.stats.status == "eos" and loop.controller.parser.status == "done"
    assert loop.chooser.num_checked == loop.stats.num_decoded + 1
    assert loop.cache.live_token_ids == prompt_ids + expected_ids(tokenizer, text)
    assert loop.cache.live_positions == list(range(loop.cache.num_live))


@pytest.mark.parametrize("mode", ["exact", "shift"])
def test_replayed_random_texts_leave_exactly_the_reduced_tokens_in_the_cache(marker_tokenizer, marker_llama, tmp_path, mode):
    rules = rules_in_mode(mode, tmp_path)

    @given(strategies.pencil_texts())
    @SLOW_SETTINGS
    def check(text):
        loop = replay(marker_tokenizer, marker_llama, "Solve:\n", text, rules.fresh())
        check_final_cache(loop, marker_tokenizer, "Solve:\n", text)

    check()


def test_exact_mode_leaves_the_cache_equal_to_a_fresh_read_of_the_reduced_text(marker_tokenizer):
    model = make_tiny_llama(len(marker_tokenizer), layers=3)
    text = "x [CALL] a [CALL] b [SEP] c [RETURN] d [SEP] e [CALL] f [SEP] g [RETURN] [RETURN] y"
    loop = replay(marker_tokenizer, model, "Q:", text, load_rules("collapse", FMT))

    ids = torch.tensor([loop.cache.live_token_ids])
    fresh = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
    torch.testing.assert_close(loop.logits, fresh, atol=1e-4, rtol=0)
    assert marker_tokenizer.decode(ids[0]) == "Q:" + reduce(text) == "Q:x  e  g   y"


def test_replay_goes_on_through_a_character_split_over_byte_tokens(marker_tokenizer, marker_llama):
    # SmolLM2 writes `∃` as byte tokens; the first holds no text until the last completes it.
    text = "[CALL] ∃ x [SEP] ¬ 1 [RETURN] ∀"
    num_tokens = len(marker_tokenizer.encode(text, add_special_tokens=False))
    ctl = Controller(FMT, load_rules("collapse", FMT), marker_tokenizer)
    loop = DecodeLoop(marker_llama, ctl, max_new_tokens=num_tokens + 1, eos_ids=frozenset([2]))
    loop.chooser = Replay(marker_tokenizer, text, ctl, eos_id=2)
    assert loop.run(marker_tokenizer.encode("Q:", add_special_tokens=False)).status == "eos"
    assert ctl.parser.text == text and loop.stats.num_decoded == num_tokens


# 3) traces in the style of PENCIL's own data generator (tests/data/pencil/generate.py)


def pencil_samples() -> list[tuple[str, dict]]:
    rows = []
    for path in sorted(DATA.glob("*.jsonl")):
        rows += [(f"{path.stem}-{n}", json.loads(line)) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines())]
    return rows


SAMPLES = pencil_samples()


def test_the_sample_traces_are_there():
    assert {name.split("-")[0] for name, _ in SAMPLES} == {"qbf", "sat"} and len(SAMPLES) >= 8


@pytest.mark.parametrize("mode", ["exact", "shift"])
@pytest.mark.parametrize("name, sample", SAMPLES, ids=[name for name, _ in SAMPLES])
def test_generator_traces_reduce_step_by_step_to_the_answer(marker_tokenizer, marker_llama, tmp_path, mode, name, sample):
    problem, trace = sample["text"].split(END_OF_PROMPT)
    prompt = problem + END_OF_PROMPT
    loop = replay(marker_tokenizer, marker_llama, prompt, trace, rules_in_mode(mode, tmp_path))

    check_final_cache(loop, marker_tokenizer, prompt, trace)
    assert reduce(trace).split() == ["Answer:", str(sample["label"])]
    # Deep QBF nesting keeps much of a short trace live at its peak; it never holds all of it.
    assert loop.chooser.max_live < len(loop.controller.transcript)
