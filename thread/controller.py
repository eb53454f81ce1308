"""The controller: reads the model's tokens as a tree and says what the cache must do next.

Each token's text goes to the streaming parser; each parser event goes to the rule set and, for
a finished tool use, to the tool registry. What comes back are actions for the runner: tokens
to prune (a rule fired) and tokens to write (a tool result). The controller holds no tensors, so
it runs and is tested without a model; `thread/runner.py` applies its actions to the KV cache.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from thread.ledger import Ledger
from thread.parser import Parser
from thread.rules import PruneDecision, RuleSet
from thread.trace import TraceWriter
from thread.transcript import Detokenizer, Transcript

logger = logging.getLogger(__name__)


@dataclass
class Prune:
    """Free the slots of these transcript indices (all live) in `decision.mode`."""

    indices: list[int]
    decision: PruneDecision


@dataclass
class Write:
    """Drop the last `num_dropped` tokens, then append `ids` (already in the transcript)."""

    ids: list[int]
    indices: list[int]
    num_dropped: int = 0
    reason: str = "tool"


Action = Prune | Write


@dataclass
class ToolCall:
    path: str
    name: str
    arguments: Any
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Controller:
    """Parser + rules + tools over one transcript. Feed it tokens; apply the actions it returns."""

    fmt: Any
    rules: RuleSet
    tokenizer: Any
    tools: Any = None
    trace: TraceWriter = field(default_factory=lambda: TraceWriter(None))
    ledger: Ledger = field(default_factory=Ledger)
    tool_timeout_s: float = 30.0
    max_result_chars: int = 4000

    def __post_init__(self) -> None:
        self.parser = Parser(self.fmt)
        self.transcript = Transcript()
        self.detok = Detokenizer(self.tokenizer)
        self.is_live: list[bool] = []
        self.num_live = 0
        self.tool_calls: list[ToolCall] = []
        self.prunes: list[tuple[Prune, int, int]] = []
        self._opened: dict[str, tuple[int, float]] = {}
        self.open_paths: list[str] = []  # nodes being generated, outermost first
        self.step = 0

    # 1) what the runner tells the controller
    def advance(self) -> None:
        """A new decode step begins; trace lines from now on carry its number."""
        self.step += 1
        self.trace.step = self.step

    def start(self, prompt_ids: list[int]) -> None:
        texts = [self.tokenizer.decode([i], skip_special_tokens=False) for i in prompt_ids]
        self.transcript.add_prompt(prompt_ids, texts)
        self._mark_live(len(prompt_ids))
        self.trace.write("prefill", ids=prompt_ids, texts=texts, live=self.num_live)

    @property
    def finished(self) -> bool:
        return self.parser.status in ("done", "error")

    def on_tokens(self, ids: list[int], source: str = "model") -> list[Action]:
        """Record tokens written by the model (or forced by the grammar); return actions."""
        actions: list[Action] = []
        for token_id in ids:
            if self.finished:
                break
            actions += self._on_token(token_id, source)
        return actions

    def close(self) -> None:
        """The stream ended (EOS, token limit or budget): let the parser mark the tree incomplete."""
        for event in self.parser.close():
            self._record_event(event)

    # 2) one token: transcript, parser, rules, tools
    def _on_token(self, token_id: int, source: str) -> list[Action]:
        text = self.detok.push(token_id)
        index = self.transcript.add(token_id, text, source, self.step)
        self._mark_live(1)
        self.trace.write("token", id=token_id, text=text, index=index, source=source, live=self.num_live)
        actions: list[Action] = []
        for n, char in enumerate(text):
            for event in self.parser.feed(char):
                self._record_event(event)
                if event.kind == "tool_ready":
                    return actions + self._run_tool(event, text[: n + 1], len(text) - n - 1)
                actions += self._prune_for(event)
        return actions

    def _record_event(self, event: Any) -> None:
        self.trace.write("event", event=event.to_json())
        if event.kind == "node_open":
            self.open_paths.append(event.path)
            self._opened[event.path] = (self.ledger.decoded, time.perf_counter())
        elif event.kind == "node_close" and event.path in self._opened:
            self.open_paths.remove(event.path)
            decoded, t0 = self._opened.pop(event.path)
            self.ledger.on_subtask_closed(event.path, self.ledger.decoded - decoded, time.perf_counter() - t0)
        elif event.kind == "error":
            logger.warning("model output left the format: %s", event.message)
            self.trace.write("error", message=event.message, where="parser")

    def _prune_for(self, event: Any) -> list[Action]:
        actions = []
        for decision in self.rules.on_event(event, self.parser.tree):
            indices = sorted({i for a, b in decision.spans for i in self.transcript.tokens_within(a, b) if self.is_live[i]})
            if indices:
                actions.append(Prune(indices, decision))
        return actions

    # 3) a tool use is complete: cut the token at the event, run the tool, write its result
    def _run_tool(self, event: Any, kept_text: str, num_cut: int) -> list[Action]:
        num_dropped, written = 0, []
        if num_cut:
            num_dropped = 1
            self._drop_last()
            written += self._write_text(kept_text, "cut", feed=False)[0]
        call, result_text = self._call_tool(event)
        tool_indices, prunes = self._write_text(result_text, "tool", feed=True)
        self.ledger.on_tool(len(tool_indices))
        written += tool_indices
        return [Write([self.transcript.ids[i] for i in written], written, num_dropped), *prunes]

    def _call_tool(self, event: Any) -> tuple[ToolCall, str]:
        name = event.value.get("name") if isinstance(event.value, dict) else None
        arguments = event.value.get("parameters") if isinstance(event.value, dict) else None
        call = ToolCall(event.path, str(name), arguments)
        if self.tools is None:
            call.result = {"error": f"no tools are declared for this run; the model called {name!r}"}
        else:
            with self.ledger.phase("tool"):
                outcome = self.tools.call(str(name), arguments, timeout_s=self.tool_timeout_s, max_result_chars=self.max_result_chars)
            call.result, call.error, call.seconds = outcome.result, outcome.error, outcome.seconds
        self.tool_calls.append(call)
        text = self.fmt.tool.render_result(json.dumps(call.result, ensure_ascii=False))
        num_tokens = len(self.tokenizer.encode(text, add_special_tokens=False))
        self.trace.write(
            "tool", node=call.path, name=call.name, arguments=call.arguments, result=call.result,
            error=call.error, seconds=round(call.seconds, 6), tokens=num_tokens,
        )
        return call, text

    def _write_text(self, text: str, source: str, *, feed: bool) -> tuple[list[int], list[Action]]:
        """Tokenize runtime-written text, add it to the transcript, and (if `feed`) parse it."""
        indices: list[int] = []
        prunes: list[Action] = []
        for token_id in self.tokenizer.encode(text, add_special_tokens=False):
            token_text = self.detok.push(token_id)
            indices.append(self.transcript.add(token_id, token_text, source, self.step))
            self._mark_live(1)
            self.trace.write("token", id=token_id, text=token_text, index=indices[-1], source=source, live=self.num_live)
            if feed:
                for event in self.parser.feed(token_text):
                    self._record_event(event)
                    prunes += self._prune_for(event)
        return indices, prunes

    def _drop_last(self) -> None:
        self.transcript.pop()
        self.detok.pop()
        self.is_live.pop()
        self.num_live -= 1
        self.trace.write("drop", index=len(self.transcript), live=self.num_live)

    # 4) bookkeeping the runner confirms
    def _mark_live(self, n: int) -> None:
        self.is_live += [True] * n
        self.num_live += n

    def applied_prune(self, action: Prune, freed: int, reencoded: int, seconds: float) -> None:
        live_before = self.num_live
        for i in action.indices:
            self.is_live[i] = False
        self.num_live -= len(action.indices)
        self.ledger.on_prune(len(action.indices), reencoded, live_before)
        spans = _runs(action.indices)
        self.trace.write(
            "prune", rule=action.decision.rule, mode=action.decision.mode, node=action.decision.node,
            spans=spans, chars=[list(s) for s in action.decision.spans], freed=freed,
            live_before=live_before, live_after=self.num_live, reencoded=reencoded, seconds=round(seconds, 6),
        )


def _runs(indices: list[int]) -> list[list[int]]:
    """Sorted indices as half-open runs: [3, 4, 5, 9] -> [[3, 6], [9, 10]]."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs
