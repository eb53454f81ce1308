"""Small Thread-2 traces written line for line as the runtime writes them (docs/design.md, "Traces").

The writer here plays the controller's part without a model: a word-level tokenizer, a document
built from nested task specs (so every parser event knows its exact character span), a calculator
tool whose call cuts the token that closes `parameters` (a `drop` line, then a `cut` token), and
the `collapse` rule set (when a task closes, its `subtasks` field is pruned). It is not a parser.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMPT = (
    "<|im_start|>system\nAnswer as a Thread-2 task tree.<|im_end|>\n"
    "<|im_start|>user\n{task}<|im_end|>\n<|im_start|>assistant\n"
)
HOSTILE = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)> & <b>"
_TOKEN = re.compile(r" ?[A-Za-z_]+|\d| |\n|[^\w \n]")


@dataclass
class Task:
    """One node to write: `tool` is a calculator expression, evaluated when `parameters` closes."""

    thought: str
    conclusion: str
    tool: str | None = None
    subtasks: list[Task] = field(default_factory=list)


def small_tasks(thought_of_leaf: str = "double 42") -> list[Task]:
    """Task 0 adds with a tool (0.0), then doubles through one nested subtask (0.1 -> 0.1.0)."""
    leaf = Task(thought="42*2", conclusion="84")
    return [
        Task(
            thought="add 17 and 25, then double",
            conclusion="84",
            subtasks=[
                Task(thought="17+25", conclusion="42", tool="17+25"),
                Task(thought=thought_of_leaf, conclusion="84", subtasks=[leaf]),
            ],
        )
    ]


def many_tasks(num_tasks: int) -> list[Task]:
    """`num_tasks` top-level tasks shaped like `small_tasks`, for size benchmarks."""
    tasks = []
    for i in range(num_tasks):
        a, b = 10 + i % 80, 7 + i % 13
        total = a + b
        leaf = Task(thought=f"{total}*2", conclusion=str(2 * total))
        tasks.append(
            Task(
                thought=f"add {a} and {b}, then double",
                conclusion=str(2 * total),
                subtasks=[
                    Task(thought=f"{a}+{b}", conclusion=str(total), tool=f"{a}+{b}"),
                    Task(thought=f"double {total}", conclusion=str(2 * total), subtasks=[leaf]),
                ],
            )
        )
    return tasks


class _Run:
    """The controller's bookkeeping: transcript, live flags, steps, and the trace lines."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.step = 0
        self.texts: list[str] = []
        self.starts: list[int] = []
        self.is_live: list[bool] = []
        self.num_chars = 0
        self.num_live = 0
        self.vocab: dict[str, int] = {}
        self.pending: list[dict[str, Any]] = []  # events decided at the end of the next text
        self.num_prompt = 0


    def write(self, kind: str, **fields: Any) -> None:
        self.lines.append({"kind": kind, "step": self.step, "t": round(0.01 * len(self.lines), 6), **fields})

    def token_id(self, text: str) -> int:
        return self.vocab.setdefault(text, 100 + len(self.vocab))

    def prefill(self, text: str) -> None:
        texts = _TOKEN.findall(text)
        self.texts += texts
        self.starts += [0] * len(texts)
        self.is_live += [True] * len(texts)
        self.num_live += len(texts)
        self.write("prefill", ids=[self.token_id(t) for t in texts], texts=texts, live=self.num_live)

    def add(self, text: str, source: str) -> None:
        self.texts.append(text)
        self.starts.append(self.num_chars)
        self.num_chars += len(text)
        self.is_live.append(True)
        self.num_live += 1
        index = len(self.texts) - 1
        self.write("token", id=self.token_id(text), text=text, index=index, source=source, live=self.num_live)

    def model(self, text: str) -> None:
        """The model writes `text`, one decode step per token."""
        for piece in _TOKEN.findall(text):
            self.step += 1
            self.add(piece, "model")

    def runtime(self, text: str) -> None:
        """The runtime writes `text` (a tool result) within the current step."""
        for piece in _TOKEN.findall(text):
            self.add(piece, "tool")

    def emit(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.write("event", event=event)

    def prune(self, node: str, chars: tuple[int, int]) -> None:
        """Free the live tokens wholly inside `chars` (what the runtime's transcript does)."""
        a, b = chars
        inside = [
            i for i, (s, t) in enumerate(zip(self.starts, self.texts))
            if self.is_live[i] and s >= a and s + len(t) <= b and i >= self.num_prompt
        ]
        live_before = self.num_live
        for i in inside:
            self.is_live[i] = False
        self.num_live -= len(inside)
        self.write(
            "prune", rule="collapse", mode="exact", node=node, spans=_runs(inside), chars=[[a, b]],
            freed=len(inside), live_before=live_before, live_after=self.num_live,
            reencoded=self.num_live - self.num_prompt, seconds=0.002,
        )


def _runs(indices: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def _event(kind: str, path: str, offset: int, **fields: Any) -> dict[str, Any]:
    event = {"kind": kind, "path": path, "offset": offset, "field": None, "span": None, "value": None}
    return {**event, "message": None, **fields}


def _field_end(path: str, name: str, key_start: int, run: _Run, value: Any) -> dict[str, Any]:
    return _event("field_end", path, run.num_chars, field=name, span=[key_start, run.num_chars], value=value)


def _write_task(run: _Run, task: Task, path: str) -> dict[str, Any]:
    """Write one task as the model (and the tool) would; return its decoded value."""
    start = run.num_chars
    run.model("{")
    run.emit([_event("node_open", path, start)])
    key = run.num_chars
    run.model(f'"thought": {json.dumps(task.thought)}')
    run.emit([_field_end(path, "thought", key, run, task.thought)])
    value: dict[str, Any] = {"thought": task.thought}
    if task.tool is not None:
        value["tooluse"] = _write_tool(run, task.tool, path)
    if task.subtasks:
        run.model(", ")
        subtasks_start = run.num_chars
        run.model('"subtasks": [')
        children = []
        for n, child in enumerate(task.subtasks):
            if n:
                run.model(", ")
            children.append(_write_task(run, child, f"{path}.{n}"))
        run.model("]")
        run.emit([_field_end(path, "subtasks", subtasks_start, run, children)])
        value["subtasks"] = children
        subtasks_end = run.num_chars
    run.model(", ")
    key = run.num_chars
    run.model(f'"conclusion": {json.dumps(task.conclusion)}')
    run.emit([_field_end(path, "conclusion", key, run, task.conclusion)])
    run.model("}")
    run.emit([_event("node_close", path, run.num_chars - 1, span=[start, run.num_chars])])
    if task.subtasks:  # collapse: the subtasks field and the separator after it leave the cache
        run.prune(path, (subtasks_start, subtasks_end + len(", ")))
    value["conclusion"] = task.conclusion
    return value


def _write_tool(run: _Run, expression: str, path: str) -> dict[str, Any]:
    run.model(", ")
    key = run.num_chars
    run.model('"tooluse": {')
    name_key = run.num_chars
    run.model('"tool_name": "calculator"')
    run.emit([_field_end(path, "tool_name", name_key, run, "calculator")])
    run.model(", ")
    parameters_key = run.num_chars
    parameters = {"expression": expression}
    run.model(f'"parameters": {json.dumps(parameters)[:-1]}')
    # The model's token "}," closes `parameters` and runs on: the runtime drops it, writes "}".
    run.step += 1
    run.add("},", "model")
    end = run.num_chars - 1
    ready = {"name": "calculator", "parameters": parameters}
    run.emit([
        _event("field_end", path, end - 1, field="parameters", span=[parameters_key, end], value=parameters),
        _event("tool_ready", path, end - 1, value=ready),
    ])
    result = str(eval(expression, {"__builtins__": {}}))
    run.write("tool", node=path, name="calculator", arguments=parameters, result=result, error=None, seconds=0.0004)
    run.texts.pop(), run.is_live.pop()
    run.num_live -= 1
    run.num_chars = run.starts.pop()
    run.write("drop", index=len(run.texts), live=run.num_live)
    run.add("}", "cut")
    result_key = run.num_chars + len(", ")
    run.runtime(f', "tool_result": {json.dumps(result)}')
    run.emit([_field_end(path, "tool_result", result_key, run, result)])
    run.model("}")
    value = {"tool_name": "calculator", "parameters": parameters, "tool_result": result}
    run.emit([_field_end(path, "tooluse", key, run, value)])
    return value


def write_trace(
    path: Path,
    tasks: list[Task] | None = None,
    *,
    task_text: str = "((17+25)*2)",
    status: str = "done",
    stop_at_step: int | None = None,
) -> Path:
    """Write a whole run's trace to `path`; `stop_at_step` ends it there with `status`."""
    run = _Run()
    run.write(
        "start", model="fixture-words", format="thread2", rules="collapse", task=task_text,
        budget={"max_steps": 4096, "max_live": 2048},
    )
    run.prefill(PROMPT.format(task=task_text))
    run.num_prompt = len(run.texts)

    # 1) the document: {"reasoning": [task, ...], "answer": ...}
    run.model('{"reasoning": [')
    values = []
    for n, task in enumerate(tasks if tasks is not None else small_tasks()):
        if n:
            run.model(", ")
        values.append(_write_task(run, task, str(n)))
    run.model("]")
    run.emit([_field_end("", "reasoning", 1, run, values)])
    answer = values[-1]["conclusion"]
    run.model(", ")
    key = run.num_chars
    run.model(f'"answer": {json.dumps(answer)}')
    run.emit([_field_end("", "answer", key, run, answer)])
    run.model("}")
    run.emit([_event("done", "", run.num_chars)])

    # 2) a budget stop or crash keeps only the lines up to that step
    if stop_at_step is not None:
        run.lines = [line for line in run.lines if line["step"] <= stop_at_step]
        run.step = stop_at_step
    ledger = _ledger(run)
    run.write("end", status=status, answer=answer if status == "done" else None, ledger=ledger)
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in run.lines))
    return path


def _ledger(run: _Run) -> dict[str, Any]:
    """A ledger shaped as `thread/ledger.py` writes it, counted from the lines that were kept."""
    tokens = [line for line in run.lines if line["kind"] == "token"]
    prunes = [line for line in run.lines if line["kind"] == "prune"]
    lives = [line.get("live", line.get("live_after")) for line in run.lines]
    lives = [live for live in lives if live is not None]
    decoded = [t for t in tokens if t["source"] == "model"]  # a dropped token was still one step
    reads = sum(t["live"] - 1 for t in decoded)
    unpruned = sum(t["index"] for t in decoded)
    closes = [line["event"] for line in run.lines if line["kind"] == "event" and line["event"]["kind"] == "node_close"]
    subtasks = {e["path"]: {"tokens": e["span"][1] - e["span"][0], "seconds": 0.05} for e in closes}
    prefilled = len(run.lines[1]["ids"])
    reencoded = sum(p["reencoded"] for p in prunes)
    tool_tokens = sum(t["source"] == "tool" for t in tokens)
    return {
        "prefilled": prefilled,
        "decoded": len(decoded),
        "reencoded": reencoded,
        "tool_tokens": tool_tokens,
        "pruned": sum(p["freed"] for p in prunes),
        "computed": prefilled + len(decoded) + reencoded + tool_tokens,
        "peak_live": max(lives),
        "mean_live": reads / len(decoded),
        "attention_reads": reads,
        "unpruned_reads": unpruned,
        "reads_saved": 1 - reads / unpruned,
        "phase_seconds": {"prefill": 0.01, "decode": 0.5, "tool": 0.0004},
        "subtasks": subtasks,
        "num_subtasks": len(subtasks),
        "per_subtask": {"tokens": 30.0, "seconds": 0.05},
    }


def write_truncated(path: Path, keep_fraction: float = 0.6, **kwargs: Any) -> Path:
    """A crashed run: the trace stops mid-line, with no `end` line."""
    write_trace(path, **kwargs)
    lines = path.read_text().splitlines(keepends=True)
    num_kept = int(len(lines) * keep_fraction)
    cut = lines[num_kept]
    path.write_text("".join(lines[:num_kept]) + cut[: len(cut) // 2])
    return path
