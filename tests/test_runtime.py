"""The decode loop under a controller: tools in the loop, prunes at the right events, budgets,
crash-safe traces. A scripted model (teacher-forced replay of a gold document through SmolLM2's
real BPE tokenizer) drives a tiny random-weight Llama, so the cache work is real."""

from __future__ import annotations

import json
import string

import pytest
import torch

from tests.conftest import make_tiny_llama
from thread.controller import Controller
from thread.formats import load_format
from thread.replay import Replay
from thread.rules import load_rules
from thread.runner import DecodeLoop, Sampling, pick
from thread.tools import builtin_tools
from thread.trace import TraceWriter

FMT = load_format("thread2")
PROMPT = "Solve: ((17+25)*3)-(48-19)\n"


def calc(expr: str, value: int) -> dict:
    return {"thought": expr, "tooluse": {"tool_name": "calculator", "parameters": {"expression": expr}, "tool_result": value}, "conclusion": str(value)}


ARITH = {
    "reasoning": [
        {
            "thought": "((17+25)*3)-(48-19)",
            "subtasks": [
                {"thought": "(17+25)*3", "subtasks": [calc("17+25", 42), calc("42*3", 126)], "conclusion": "126"},
                calc("48-19", 29),
                calc("126-29", 97),
            ],
            "conclusion": "97",
        }
    ],
    "answer": "97",
}
CHAIN = {"reasoning": [calc(f"{i}+1", i + 1) for i in range(7)], "answer": "7"}


def run(tokenizer, model, doc, rules="none", *, trace=None, max_live=None, tools=None):
    controller = Controller(FMT, load_rules(rules, FMT), tokenizer, tools=tools or builtin_tools(), trace=TraceWriter(trace))
    loop = DecodeLoop(model, controller, max_live_tokens=max_live, eos_ids=frozenset([tokenizer.eos_token_id]))
    loop.chooser = Replay(tokenizer, json.dumps(doc, ensure_ascii=False), controller, eos_id=tokenizer.eos_token_id)
    loop.run(tokenizer.encode(PROMPT))
    return loop


def live_text(loop, tokenizer) -> str:
    ctl = loop.controller
    doc_ids = [ctl.transcript.ids[i] for i in loop.cache.live_indices if i >= ctl.transcript.doc_start]
    return tokenizer.decode(doc_ids)


# 1) tools run inside the loop, their results land in the cache


def test_tool_results_are_written_into_the_cache_after_their_parameters(smollm2_tokenizer, tiny_llama):
    loop = run(smollm2_tokenizer, tiny_llama, ARITH)
    ctl = loop.controller

    assert loop.stats.status == "done"
    assert [(c.name, c.arguments, c.result) for c in ctl.tool_calls] == [
        ("calculator", {"expression": "17+25"}, 42),
        ("calculator", {"expression": "42*3"}, 126),
        ("calculator", {"expression": "48-19"}, 29),
        ("calculator", {"expression": "126-29"}, 97),
    ]
    assert loop.cache.live_indices == list(range(len(ctl.transcript)))
    assert live_text(loop, smollm2_tokenizer) == json.dumps(ARITH)
    tool_text = "".join(t for t, s in zip(ctl.transcript.texts, ctl.transcript.sources) if s == "tool")
    assert tool_text == ', "tool_result": 42, "tool_result": 126, "tool_result": 29, "tool_result": 97'
    assert ctl.parser.tree.to_json() == ARITH


def test_a_token_running_past_the_parameters_is_cut_before_the_tool_result(smollm2_tokenizer, tiny_llama):
    loop = run(smollm2_tokenizer, tiny_llama, ARITH)
    sources = loop.controller.transcript.sources

    # SmolLM2 writes `"},` as one token; the runtime keeps `"}` and writes the result after it.
    assert sources.count("cut") == 4
    assert all(sources[i + 1] == "tool" for i, s in enumerate(sources) if s == "cut")


def test_a_tool_fault_becomes_the_result_and_the_run_goes_on(smollm2_tokenizer, tiny_llama):
    doc = {"reasoning": [{"thought": "x", "tooluse": {"tool_name": "calculator", "parameters": {"expression": "__import__('os')"}, "tool_result": None}}], "answer": "?"}
    controller = Controller(FMT, load_rules("none", FMT), smollm2_tokenizer, tools=builtin_tools())
    loop = DecodeLoop(tiny_llama, controller, max_new_tokens=200)
    text = json.dumps(doc)
    loop.chooser = Replay(smollm2_tokenizer, text[: text.index(', "tool_result"')], controller)

    with pytest.raises(Exception, match="left the gold text|fully written"):
        loop.run(smollm2_tokenizer.encode(PROMPT))
    (call,) = controller.tool_calls
    assert set(call.result) == {"error"} and call.error
    assert '"tool_result": {"error": ' in controller.parser.text


def test_forced_tokens_after_a_tool_call_are_asked_for_again_after_its_result():
    from transformers import PreTrainedTokenizerFast

    from tokenizers import Tokenizer, decoders, models

    from thread.constrain import Bounds, GrammarConstraint

    # A tokenizer of single characters: once `calculator` is chosen the grammar forces every
    # character up to the expression, and after the expression's `"` it forces `}` then `,`.
    # The `,` is stale as soon as `}` runs the tool, which writes `, "tool_result": ...` itself.
    # (thread-tiny's own tokenizer holds whole scaffolding runs as tokens beside their single
    # characters, so its grammar seldom forces anything.)
    chars = {c: i for i, c in enumerate(["<pad>", "<unk>", *string.printable])}
    backend = Tokenizer(models.BPE(vocab=chars, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])  # as thread-tiny
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    tools = builtin_tools()
    controller = Controller(FMT, load_rules("window", FMT), tokenizer, tools=tools)
    constraint = GrammarConstraint(tokenizer, FMT, Bounds(max_depth=4), tools=tools.declarations())
    loop = DecodeLoop(make_tiny_llama(len(tokenizer)), controller, constraint=constraint, max_new_tokens=400)
    loop.chooser = Replay(tokenizer, json.dumps(ARITH), controller)

    assert loop.run(tokenizer.encode(PROMPT)).status == "done"
    assert constraint.error is None and loop.stats.num_forced > 0
    assert controller.ledger.forced == loop.stats.num_forced
    assert [c.result for c in controller.tool_calls] == [42, 126, 29, 97]
    assert controller.parser.tree.to_json() == ARITH


# 2) prunes happen at the right events and remove exactly the right tokens


def test_collapse_prunes_exactly_the_tokens_inside_each_closed_subtasks_field(smollm2_tokenizer, tiny_llama):
    loop = run(smollm2_tokenizer, tiny_llama, ARITH, "collapse")
    ctl = loop.controller
    tree = ctl.parser.tree

    pruned = {i for action, *_ in ctl.prunes for i in action.indices} if ctl.prunes else set()
    expected = set()
    for path in ("0.0", "0"):  # the two tasks that have subtasks, innermost first
        a, b = tree.prune_span(tree.node(path).fields["subtasks"])
        expected |= set(ctl.transcript.tokens_within(a, b))
    live = set(loop.cache.live_indices)
    assert live == set(range(len(ctl.transcript))) - expected
    assert not pruned or pruned == expected


def test_collapse_fires_when_the_task_closes(smollm2_tokenizer, tiny_llama, tmp_path):
    trace = tmp_path / "t.jsonl"
    run(smollm2_tokenizer, tiny_llama, ARITH, "collapse", trace=trace)
    lines = [json.loads(line) for line in trace.read_text().splitlines()]

    prunes = [(n, line) for n, line in enumerate(lines) if line["kind"] == "prune"]
    assert [p["node"] for _, p in prunes] == ["0.0", "0"]
    for n, prune in prunes:
        close = lines[n - 1]
        assert close["kind"] == "event" and close["event"]["kind"] == "node_close"
        assert close["event"]["path"] == prune["node"] and close["step"] == prune["step"]
        assert prune["live_after"] == prune["live_before"] - prune["freed"]


def test_window_keeps_the_last_two_finished_siblings(smollm2_tokenizer, tiny_llama):
    loop = run(smollm2_tokenizer, tiny_llama, CHAIN, "window")
    ctl = loop.controller
    tree = ctl.parser.tree
    live = set(loop.cache.live_indices)

    for i in range(7):
        a, b = tree.node(str(i)).span
        inside = set(ctl.transcript.tokens_within(a, b))
        assert (inside <= live) if i >= 5 else not (inside & live), i
    assert ctl.ledger.pruned == len(ctl.transcript) - loop.cache.num_live


def test_exact_prunes_leave_the_cache_equal_to_a_fresh_read_of_the_kept_tokens(smollm2_tokenizer):
    model = make_tiny_llama(len(smollm2_tokenizer), layers=3)
    loop = run(smollm2_tokenizer, model, CHAIN, "window")

    ids = torch.tensor([loop.cache.live_token_ids])
    fresh = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1]
    pending = loop.pending
    assert not pending
    torch.testing.assert_close(loop.logits, fresh, atol=1e-4, rtol=0)
    assert loop.cache.live_positions == list(range(loop.cache.num_live))


def test_pruned_runs_stay_below_the_models_maximum_position(smollm2_tokenizer):
    model = make_tiny_llama(len(smollm2_tokenizer), max_positions=160)
    doc = {"reasoning": [calc(f"{i}+1", i + 1) for i in range(12)], "answer": "12"}

    pruned = run(smollm2_tokenizer, model, doc, "window")
    unpruned = run(smollm2_tokenizer, model, doc, "none")

    assert pruned.stats.status == unpruned.stats.status == "done"
    assert max(pruned.cache.live_positions) < 160 < len(pruned.controller.transcript)
    assert max(unpruned.cache.live_positions) == len(unpruned.controller.transcript) - 1


# 3) budgets and crashes


def test_budget_stops_the_run_naming_live_size_budget_and_node(smollm2_tokenizer, tiny_llama, tmp_path):
    trace = tmp_path / "t.jsonl"
    loop = run(smollm2_tokenizer, tiny_llama, ARITH, "none", trace=trace, max_live=90)

    assert loop.stats.status == "budget"
    assert "max_live_tokens=90" in loop.stats.message and "would reach 91" in loop.stats.message
    assert "task 0.0.0" in loop.stats.message
    assert loop.controller.parser.tree.complete is False
    kinds = [json.loads(line)["kind"] for line in trace.read_text().splitlines()]
    assert kinds[-1] == "error"


def test_a_crash_mid_run_leaves_a_trace_that_reads_to_the_last_step(smollm2_tokenizer, tmp_path, monkeypatch):
    model = make_tiny_llama(len(smollm2_tokenizer))
    trace = tmp_path / "t.jsonl"
    calls = {"n": 0}
    forward = model.forward

    def failing_forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:
            raise RuntimeError("injected fault")
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", failing_forward)
    with pytest.raises(RuntimeError, match="injected fault"):
        run(smollm2_tokenizer, model, ARITH, "collapse", trace=trace)

    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    tokens = [line for line in lines if line["kind"] == "token"]
    assert lines[-1]["kind"] == "error" and "injected fault" in lines[-1]["message"]
    assert tokens[-1]["step"] == 39  # forward 40 was the flush of decode step 39
    assert [t["index"] for t in tokens] == list(range(tokens[0]["index"], tokens[-1]["index"] + 1))


# 4) sampling


def test_sampling_with_a_seed_is_reproducible_and_top_p_near_zero_is_greedy():
    logits = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    draws = [pick(logits, Sampling(1.0, 1.0, 7), torch.Generator().manual_seed(7)) for _ in range(3)]
    assert len(set(draws)) == 1
    assert pick(logits, Sampling(1.0, 1e-9, 0), torch.Generator().manual_seed(0)) == int(logits.argmax())
    with pytest.raises(ValueError, match="top_p"):
        Sampling(top_p=0)


def test_an_expression_is_read_through_its_tape_table_and_the_window_keeps_steps_flat(smollm2_tokenizer, tiny_llama):
    from thread.tasks import arith

    expr = "1+2*3-(4+5*(6-7))*8+9"
    doc = arith.gold_document(expr)
    loop = run(smollm2_tokenizer, tiny_llama, doc, "window", tools=builtin_tools(table=arith.tape_table(expr)))
    ctl = loop.controller
    tokens = arith.tape(expr)
    reads = [c for c in ctl.tool_calls if c.name == "lookup"]
    # every token is read once, in order, then the closing `)` past the end
    assert [c.arguments["key"] for c in reads] == [str(i) for i in range(len(tokens) + 1)]
    assert [c.result for c in reads] == tokens + [")"]
    assert [c.result for c in ctl.tool_calls if c.name == "calculator"] == [6, 7, -1, -5, -1, -8, 15, 24]
    assert doc["answer"] == str(eval(expr)) == "24"
    # under `window` only the last two top-level steps stay, and they hold the state
    text = live_text(loop, smollm2_tokenizer)
    assert text.count('"thought"') == 2 and '"conclusion": "22:24)"}], "answer": "24"}' in text
