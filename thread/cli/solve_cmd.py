"""`thread solve`: run one task on a model and show the answer, the tree's outline and the ledger."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from thread.cli import app

console = Console(stderr=True)
logger = logging.getLogger(__name__)


@app.command()
def solve(
    task: str = typer.Argument(..., help="The task text, e.g. an expression: \"((17+25)*3)-(48-19)\"."),
    model: str = typer.Option("thread-tiny", "--model", "-m", help="Registry name (thread-tiny, smollm2), local folder or HF id."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", "-t", help="Tool to declare (repeatable); default: the model's own list."),
    table: Optional[Path] = typer.Option(None, "--table", help="Table for the `lookup` tool: a JSON object file or a two-column CSV."),
    rules: Optional[str] = typer.Option(None, "--rules", "-r", help="Rule set name (none, collapse, window, tim) or a TOML file."),
    max_live: Optional[int] = typer.Option(None, "--max-live", help="Budget of live tokens; the run stops with an error past it."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Stop after this many decoded tokens."),
    trace: Optional[Path] = typer.Option(None, "--trace", help="Trace file (JSON lines); default runs/trace-<time>.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with answer, tree, ledger, status."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 is greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    constrain: Optional[bool] = typer.Option(None, "--constrain/--no-constrain", help="Grammar-constrained decoding (default: the model's setting)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Reasoning format (thread2, pencil); default: the model's."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16 or float16."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
    device_map: Optional[str] = typer.Option(None, "--device-map", help="accelerate device map, e.g. auto."),
) -> None:
    """Solve TASK with a model that writes its reasoning as a tree; prune finished subtrees."""
    from thread.solve import Session

    for name, value, low in (("--max-live", max_live, 1), ("--max-new-tokens", max_new_tokens, 0)):
        if value is not None and value < low:
            raise typer.BadParameter(f"{name} {value}: must be >= {low}")
    trace = trace or Path("runs") / f"trace-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    try:
        with console.status(f"loading {model}"):
            session = Session(model, dtype=dtype, device=device, device_map=device_map, format=fmt)
        with console.status("solving"):
            result = session.solve(
                task, tools=tool, table=table, rules=rules, max_live_tokens=max_live, max_new_tokens=max_new_tokens,
                trace=trace, temperature=temperature, top_p=top_p, seed=seed, constrained=constrain,
            )
    except (ValueError, KeyError, OSError) as exc:
        # A bad option or file (model, table, rules, tool, format): one line, not a traceback.
        logger.debug("solve failed", exc_info=True)
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        console.print(f"error: {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        # The trace is flushed step by step: say where the run so far is, and exit as SIGINT does.
        console.print(f"interrupted: the run so far is in {trace} (thread trace show {trace})", highlight=False)
        raise typer.Exit(130) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        _show(result)
    raise typer.Exit(0 if result.ok else 1)


def _show(result: Any) -> None:
    out = Console()
    out.print(f"[bold]answer[/bold]: {json.dumps(result.answer, ensure_ascii=False)}")
    out.print(f"status: {result.status}" + (f" ({result.message})" if result.message else ""))
    for call in result.tool_calls:
        out.print(f"  tool {call['name']}({json.dumps(call['arguments'], ensure_ascii=False)}) -> {json.dumps(call['result'], ensure_ascii=False)[:80]}")
    out.print(ledger_table(result.ledger))
    if result.trace_path:
        out.print(f"trace: {result.trace_path}  (thread trace show {result.trace_path})")


def ledger_table(ledger: dict[str, Any]) -> Table:
    """The ledger as a two-column table; nested sections are flattened with dots."""
    table = Table(title="ledger", show_header=False)
    for key, value in _flatten(ledger):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [(prefix.rstrip("."), f"{len(value)} entries")]
    return [(prefix.rstrip("."), value)]
