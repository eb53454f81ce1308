"""Parsing cost per character: streaming 1 character at a time, 1-8 character chunks, 64-character
chunks, against lark's one-shot LALR parse of the same text. Goal: <= 2 us/char streaming.

    .venv/bin/python evals/bench_parser.py [--tasks 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import lark
from rich.console import Console
from rich.table import Table

from thread.formats import load_format
from thread.parser import Parser

WORDS = "plan the trip check the budget call the hotel é 中文 naïve \"quoted\" back\\slash".split()


def make_document(num_tasks: int, seed: int = 0) -> str:
    """A realistic Thread-2 document: nested tasks, tool uses with nested JSON, escapes, non-ASCII."""
    rng = random.Random(seed)
    count = 0

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) + "\n"

    def task(depth: int) -> dict:
        nonlocal count
        count += 1
        out: dict = {"title": sentence()[:30], "thought": sentence()}
        if rng.random() < 0.4:
            out["tooluse"] = {
                "tool_name": "lookup",
                "parameters": {"query": sentence(), "filters": {"k": [1, 2.5, None, True]}},
                "tool_result": {"rows": [{"id": i, "text": sentence()} for i in range(2)]},
            }
        if depth < 5 and count < num_tasks:
            out["subtasks"] = [task(depth + 1) for _ in range(rng.randint(0, 3))]
        out["conclusion"] = sentence()
        return out

    reasoning = []
    while count < num_tasks:
        reasoning.append(task(0))
    return json.dumps({"reasoning": reasoning, "answer": "done"}, ensure_ascii=False, indent=1)


def chunks(text: str, sizes: tuple[int, int], seed: int = 1) -> list[str]:
    rng, out, i = random.Random(seed), [], 0
    while i < len(text):
        n = rng.randint(*sizes)
        out.append(text[i : i + n])
        i += n
    return out


def stream_seconds(pieces: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        parser = Parser("thread2")
        start = time.perf_counter()
        for piece in pieces:
            parser.feed(piece)
        parser.close()
        best = min(best, time.perf_counter() - start)
        assert parser.status == "done", parser.error
    return best


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--tasks", type=int, default=1000)
    args.add_argument("--repeat", type=int, default=3)
    opts = args.parse_args()

    text = make_document(opts.tasks)
    fmt = load_format("thread2")
    fmt.tables  # build the tables outside the timings
    reference = lark.Lark(fmt.grammar, parser="lalr", start=fmt.start)
    best = float("inf")
    for _ in range(opts.repeat):
        start = time.perf_counter()
        reference.parse(text)
        best = min(best, time.perf_counter() - start)
    per_char_ref = best / len(text) * 1e6

    table = Table(title=f"thread parser: {len(text):,} characters, {opts.tasks} tasks")
    for col in ("feeding", "seconds", "us/char", "x lark one-shot"):
        table.add_column(col, justify="right")
    table.add_row("lark one-shot parse", f"{best:.3f}", f"{per_char_ref:.2f}", "1.0")
    for label, sizes in (("1 char", (1, 1)), ("1-8 chars", (1, 8)), ("64 chars", (64, 64))):
        seconds = stream_seconds(chunks(text, sizes), opts.repeat)
        per_char = seconds / len(text) * 1e6
        table.add_row(label, f"{seconds:.3f}", f"{per_char:.2f}", f"{per_char / per_char_ref:.1f}")
    Console().print(table)
    Console().print("goal: <= 2 us/char when streaming")


if __name__ == "__main__":
    main()
