"""`thread bench`: measure what pruning buys (figures P1-P5) on one or more models; table, JSON."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from thread.cli import app

console = Console()
DEFAULT_MODELS = ["smollm2", "thread-tiny"]


@app.command()
def bench(
    model: list[str] | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Registry name or folder (repeatable, or a comma list); default smollm2, thread-tiny.",
    ),
    figures: str = typer.Option(
        "P1,P2,P3,P4,P5", "--figures", "-f", help="Comma list of figures to measure."
    ),
    runs: int | None = typer.Option(
        None, "--runs", help="Runs per P1 and P4 figure (default 3; 2 with --quick)."
    ),
    replay_runs: int | None = typer.Option(
        None, "--replay-runs", help="Replays per mode for P2 and P3 (default 1)."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="Small sizes: a smoke test, not figures to quote."
    ),
    budget: int | None = typer.Option(
        None,
        "--budget",
        help="Live budget that horizons are counted in; default: from the gold trace.",
    ),
    families: str = typer.Option(
        "chain", "--families", help="Task families to replay (chain, arith)."
    ),
    dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16 or float16."),
    threads: int | None = typer.Option(
        None, "--threads", help="torch threads (default: torch's choice)."
    ),
    out: Path = typer.Option(
        Path("runs/bench.json"), "--out", help="JSON file for the figures and the machine."
    ),
) -> None:
    """Measure P1-P5 on each model: every figure a ratio of two runs in the same process."""
    import torch

    from thread.bench import BenchError, machine_info, parse_figures

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        only = parse_figures(figures)
        options = _options(quick, runs, replay_runs, budget, families)
    except BenchError as exc:
        raise typer.BadParameter(str(exc)) from None
    names = [n.strip() for m in (model or DEFAULT_MODELS) for n in m.split(",") if n.strip()]

    started = time.perf_counter()
    report: dict[str, Any] = {
        "machine": machine_info(),
        "options": dataclasses.asdict(options),
        "figures_requested": list(only),
        "models": [],
        "errors": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        session = _load(name, dtype, report["errors"])
        if session is not None:
            report["models"].append(_bench_one(session, dtype, options, only))
        report["seconds"] = time.perf_counter() - started
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")  # after each model
    for entry in report["models"]:
        console.print(_table(entry))
    console.print(f"figures: {out}  ({report['seconds']:.0f} s)")
    raise typer.Exit(1 if report["errors"] else 0)


def _options(
    quick: bool, runs: int | None, replay_runs: int | None, budget: int | None, families: str
) -> Any:
    from thread.bench import BenchOptions

    base = BenchOptions.quick() if quick else BenchOptions()
    overrides: dict[str, Any] = {"families": tuple(f.strip() for f in families.split(","))}
    for key, value in (("runs", runs), ("replay_runs", replay_runs), ("budget", budget)):
        if value is not None:
            overrides[key] = value
    return dataclasses.replace(base, **overrides)


def _load(name: str, dtype: str, errors: dict[str, str]) -> Any:
    """A Session for `name`, or None with the reason in `errors`: a model that will not load
    (not installed, not trained yet) must not cost the other models their figures."""
    from thread.solve import Session

    with console.status(f"loading {name}"):
        try:
            return Session(name, dtype=dtype)
        except (ValueError, OSError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]{name}: {errors[name]}[/red]")
            return None


def _bench_one(session: Any, dtype: str, options: Any, only: tuple[str, ...]) -> dict[str, Any]:
    from thread.bench import Target, run_bench

    name = session.model_name
    with console.status(f"{name}: starting") as status:
        started = time.perf_counter()

        def say(message: str) -> None:
            status.update(f"{name}: {message}  [{time.perf_counter() - started:.0f} s]")

        measured = run_bench(Target.from_session(session), options, only, on_progress=say)
    return {
        "model": name,
        "dtype": dtype,
        "seconds": time.perf_counter() - started,
        "figures": [f.to_json() for f in measured],
    }


def _table(entry: dict[str, Any]) -> Table:
    title = f"thread bench: {entry['model']} ({entry['dtype']}), median of the runs with low-high"
    table = Table(title=title)
    for col in ("figure", "measure", "median", "low-high", "runs", "goal", "met"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for f in entry["figures"]:
        table.add_row(
            f["figure"],
            f["name"],
            f"{f['median']:.3g}",
            f"{f['low']:.3g}-{f['high']:.3g}",
            str(len(f["ratios"])),
            f["goal"] or "",
            _verdict(f),
        )
    return table


def _verdict(figure: dict[str, Any]) -> str:
    if not figure["valid"]:
        return "[red]invalid[/red]"
    if figure["met"] is None:
        return ""
    return "[green]met[/green]" if figure["met"] else "[yellow]missed[/yellow]"
