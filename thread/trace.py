"""The writer side of a run's trace: JSON lines, one per happening, flushed as they are written.

A trace must survive the run that writes it: every line is flushed before the runtime moves on,
so a crash or Ctrl-C leaves a file that reads up to the last step. The line kinds are listed in
docs/design.md ("Traces"); `thread/report.py` reads them back. This module does no rendering.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)

TRACE_VERSION = 1


class TraceWriter:
    """Append-only JSON-lines writer; `step` is stamped on every line by the caller's clock."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        self.step = 0
        self.num_lines = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        self._t0 = time.perf_counter()

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(self, kind: str, **fields: Any) -> None:
        if self._file is None:
            return
        line = {"kind": kind, "step": self.step, "t": round(time.perf_counter() - self._t0, 6)}
        line.update(fields)
        self._file.write(json.dumps(line, ensure_ascii=False, default=_jsonable) + "\n")
        self._file.flush()
        self.num_lines += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    """Fallback for values json cannot write (tuples are lists already; sets, paths, objects)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    return repr(value)
