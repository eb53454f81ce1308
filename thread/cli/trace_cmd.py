"""`thread trace show|replay|html`: look at what a run did, from its trace file.

`show` draws the node tree (what each task thought, called and concluded, and when it was
pruned) and the ledger; `replay` prints the live context at a step; `html` writes one offline
page. The reading and the HTML live in `thread/report/`; this module owns the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from thread.cli import app
from thread.report import (
    LiveContext, PrunedRun, Trace, TraceError, TraceNode, ledger_rows, load_trace, render_html,
)

trace_app = typer.Typer(
    help="Inspect a run's trace: its tree, its live context at a step, an HTML report.",
    no_args_is_help=True,
)
app.add_typer(trace_app, name="trace")

MAX_TEXT = 72


def shorten(value: Any, limit: int = MAX_TEXT) -> str:
    """One line of at most `limit` characters; non-strings are written as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _prune_words(prune: Any) -> str:
    return f"pruned at step {prune.step} ({prune.mode})"


def node_label(node: TraceNode) -> Text:
    """The node's lines: path and title or thought, tool call, conclusion, prunes, state."""
    label = Text()
    label.append(f"task {node.path}" if node.path else "document", style="bold")
    if node.label:
        label.append(f"  {shorten(node.label)}")
    if node.tool is not None:
        call = f"{node.tool.name} {shorten(node.tool.arguments, 40)}"
        outcome = f"error: {node.tool.error}" if node.tool.error else shorten(node.tool.result, 40)
        label.append(f"\ntool: {call} → {outcome}", style="cyan")
    for name in ("conclusion", "answer"):
        if name in node.fields:
            label.append(f"\n{name}: {shorten(node.fields[name])}", style="green")
    for name, prune in node.pruned_fields.items():
        if prune is not node.pruned:
            label.append(f"\n{name} {_prune_words(prune)}", style="yellow")
    if node.pruned is not None:
        label.append(f"\n{_prune_words(node.pruned)}", style="red")
    elif node.named_by and not node.pruned_fields:
        label.append(f"\n{_prune_words(node.named_by[-1])}", style="yellow")
    if node.error:
        label.append(f"\nerror: {shorten(node.error)}", style="bold red")
    elif node.path and not node.is_closed:
        label.append("\nstill open when the trace ended", style="magenta")
    return label


def tree_view(trace: Trace) -> Tree:
    root = trace.tree()
    view = Tree(node_label(root), guide_style="dim")

    def add(parent: Tree, node: TraceNode) -> None:
        for child in node.children:
            add(parent.add(node_label(child)), child)

    add(view, root)
    return view


def ledger_table(trace: Trace) -> Table:
    ledger, is_partial = trace.ledger()
    title = "Ledger, recomputed (the trace has no end line)" if is_partial else "Ledger"
    table = Table(title=title, title_justify="left", min_width=len(title) + 4)
    table.add_column("count")
    table.add_column("value", justify="right")
    for key, value in ledger_rows(ledger):
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else shorten(value, 40))
    return table


def summary_line(trace: Trace) -> Text:
    start = trace.start
    words = [f"{trace.path.name}: {trace.status}", f"{trace.last_step} steps", f"{len(trace.prunes)} prunes"]
    words += [f"{key} {shorten(start[key], 40)}" for key in ("model", "rules") if key in start]
    if trace.is_truncated:
        words.append("last line cut off")
    return Text(", ".join(words), style="bold")


def replay_view(context: LiveContext, last_step: int) -> Group:
    header = Text(
        f"step {context.step} of {last_step}: {context.num_live} live tokens, "
        f"{context.num_pruned} pruned",
        style="bold",
    )
    body = Text()
    for piece in context.pieces:
        if isinstance(piece, PrunedRun):
            body.append(piece.marker(), style="black on yellow")
        else:
            body.append(piece.text)
    return Group(header, body)


def _fail(error: Exception | str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(Text(f"error: {error}", style="bold red"), soft_wrap=True)
    return typer.Exit(code=2)


def _load(file: Path) -> Trace:
    try:
        return load_trace(file)
    except TraceError as error:
        raise _fail(error) from None


@trace_app.command("show")
def show(file: Path = typer.Argument(..., help="A trace file (JSON lines).")) -> None:
    """The node tree, each node with its tool call, conclusion and prunes; then the ledger."""
    trace = _load(file)
    console = Console(highlight=False)
    console.print(summary_line(trace))
    console.print(tree_view(trace))
    for error in trace.errors:
        console.print(Text(f"step {error['step']}: {error['where']} error: {error['message']}", style="red"))
    console.print(ledger_table(trace))


@trace_app.command("replay")
def replay(
    file: Path = typer.Argument(..., help="A trace file (JSON lines)."),
    step: int = typer.Option(..., "--step", "-k", help="Decode step K (0 = prefill)."),
) -> None:
    """The live context at step K as the model saw it; pruned runs show as markers."""
    trace = _load(file)
    try:
        context = trace.live_at(step)
    except TraceError as error:
        raise _fail(error) from None
    Console(highlight=False).print(replay_view(context, trace.last_step))


@trace_app.command("html")
def html(
    file: Path = typer.Argument(..., help="A trace file (JSON lines)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the page."),
) -> None:
    """One self-contained HTML page: tree, live-size plot, ledger, step slider."""
    trace = _load(file)
    try:
        output.write_text(render_html(trace), encoding="utf-8")
    except OSError as error:
        raise _fail(f"cannot write {output}: {error.strerror}") from None
    Console(highlight=False).print(Text(f"wrote {output} ({output.stat().st_size:,} bytes)"))
