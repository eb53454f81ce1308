"""`thread parse`: stream a document through the parser and print what it understood.

Prints the document in its format's own shape (Thread-2 JSON), the event stream as JSON lines
(`--events`), or, for a format that declares a reduction (PENCIL), the reduced text and the
call tree. Malformed or truncated input: `LINE:COLUMN: message` on stderr, the partial tree on
stdout, exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import BinaryIO

import typer
from rich.console import Console

from thread.cli import app
from thread.formats import ThreadFormatError, load_format
from thread.parser import Parser

CHUNK = 1 << 16


def _dumps(value: object, indent: int | None = 2) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \uD800-style escape
        text = json.dumps(value, indent=indent)
    return text


def _open(source: str) -> BinaryIO:
    if source == "-":
        return sys.stdin.buffer
    path = Path(source)
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {source}", param_hint="FILE")
    return path.open("rb")


@app.command("parse")
def parse(
    source: str = typer.Argument("-", metavar="[FILE|-]", help="The document to parse; '-' (the default) reads stdin."),
    events: bool = typer.Option(False, "--events", help="Print the parser's events as JSON lines instead of the document."),
    fmt: str = typer.Option("thread2", "--format", metavar="NAME|FILE", help="Format name (thread2, pencil) or a path to a format .toml."),
    outline: bool = typer.Option(False, "--outline", help="Print the node tree with spans (any format) instead of the document."),
) -> None:
    """Parse a document as it would stream from a model and print it back.

    Thread-2 input comes back as the same JSON document: json.loads of the output equals json.loads of the input.

    A format that declares a reduction, such as pencil, prints the reduced text and its call tree.

    Malformed or truncated input: LINE:COLUMN: message on stderr, the partial tree on stdout, exit status 2.
    """
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        parser = Parser(load_format(fmt))
    except (ThreadFormatError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="--format") from e

    # 1) stream the bytes through, printing events as they are decided
    stream = _open(source)
    try:
        while chunk := stream.read(CHUNK):
            _print_events(parser.feed(chunk), events)
        _print_events(parser.close(), events)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()

    # 2) the document, or the reduced text and tree
    if not events:
        tree = parser.tree
        if outline:
            doc = tree.outline()
        elif parser.format.reduce is not None:
            doc = {"reduced": tree.reduced_text(), "tree": tree.outline()}
        else:
            doc = tree.to_json()
        sys.stdout.write(_dumps(doc) + "\n")

    # 3) the verdict
    if parser.error is not None:
        err.print(str(parser.error), markup=False)
        raise typer.Exit(2)
    if parser.status == "incomplete":
        err.print(parser.incomplete_message(), markup=False)
        raise typer.Exit(2)


def _print_events(batch: list, enabled: bool) -> None:
    if enabled:
        for event in batch:
            sys.stdout.write(_dumps(event.to_json(), indent=None) + "\n")
