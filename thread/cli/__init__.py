"""The `thread` command line: one typer app, one module per command group.

Each module in this package registers its commands on `app`; this file only imports them.
"""

from __future__ import annotations

import logging

import typer

app = typer.Typer(
    name="thread",
    help="Run a reasoning model as a tree of tasks inside a bounded KV cache.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Run a reasoning model as a tree of tasks inside a bounded KV cache."""
    # The library logs with a NullHandler; the command line shows its warnings on stderr.
    from rich.console import Console
    from rich.logging import RichHandler

    root = logging.getLogger("thread")
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False)
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)


# Command modules register themselves on `app` when imported (keep this list sorted).
from thread.cli import bench_cmd  # noqa: E402,F401
from thread.cli import eval_cmd  # noqa: E402,F401
from thread.cli import models_cmd  # noqa: E402,F401
from thread.cli import parse_cmd  # noqa: E402,F401
from thread.cli import solve_cmd  # noqa: E402,F401
from thread.cli import trace_cmd  # noqa: E402,F401
from thread.cli import train_cmd  # noqa: E402,F401


def main() -> None:
    app()
