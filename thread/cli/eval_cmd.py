"""`thread eval SUITE`: solve a suite's instances with pruning on and off; JSON, table and plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from thread.cli import app

console = Console()


@app.command("eval")
def eval_(
    suite: str = typer.Argument(..., help="Suite name from evals/suites.toml (arith, chain, arith-small, chain-small)."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help="Comma-separated sizes, overriding the suite's."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Instances per size, overriding the suite's."),
    model: str = typer.Option("thread-tiny", "--model", "-m", help="Registry name or folder."),
    pruning: str = typer.Option("both", "--pruning", help="on, off or both."),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Folder for results.jsonl (a row per solve, written as it goes), traces/, results.json, summary.json and plot.png."),
) -> None:
    """Run SUITE and report accuracy, peak/mean live tokens, trace tokens, wall time, ledger."""
    from thread.evals import get_suite, plot, run_suite, summarize
    from thread.solve import Session

    if pruning not in ("on", "off", "both"):
        raise typer.BadParameter(f"--pruning {pruning!r}: expected on, off or both")
    try:
        size_list = [int(s) for s in sizes.split(",")] if sizes else None
    except ValueError:
        raise typer.BadParameter(f"--sizes {sizes!r}: expected integers separated by commas") from None
    chosen = get_suite(suite, size_list, seeds)
    modes = {"on": (True,), "off": (False,), "both": (True, False)}[pruning]
    with console.status(f"loading {model}"):
        session = Session(model)
    total = len(chosen.sizes) * chosen.seeds * len(modes)
    out.mkdir(parents=True, exist_ok=True)
    progress_rows = (out / "results.jsonl").open("w")  # each solve as it ends: an interrupted run keeps them
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"{chosen.name}", total=total)

        def on_row(row: dict) -> None:
            progress_rows.write(json.dumps(row, default=str) + "\n")
            progress_rows.flush()
            mark = "ok" if row["correct"] else row["status"]
            progress.update(bar, advance=1, description=f"{chosen.name} size {row['size']} seed {row['seed']} {mark}")

        try:
            rows = run_suite(session, chosen, pruning=modes, trace_dir=out / "traces", on_row=on_row)
        finally:
            progress_rows.close()

    summary = summarize(rows)
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(summary, out / "plot.png", session.config.get("context_window"))
    console.print(_table(summary))
    console.print(f"results: {out / 'results.json'}  plot: {out / 'plot.png'}")


def _table(summary: list[dict]) -> Table:
    # Short headers, so that the table fits an 80-column terminal; results.json has every field.
    table = Table(title="thread eval (live and trace in tokens)")
    for col in ("suite", "size", "prune", "n", "exact", "peak live", "mean live", "trace", "s/solve", "status"):
        table.add_column(col, justify="right", overflow="fold")
    for s in summary:
        table.add_row(
            s["suite"], str(s["size"]), "on" if s["pruning"] else "off", str(s["n"]), f"{s['accuracy']:.0%}",
            str(s["peak_live"]), f"{s['mean_live']:.0f}", f"{s['trace_tokens']:.0f}", f"{s['seconds']:.1f}",
            ",".join(s["statuses"]),
        )
    return table
