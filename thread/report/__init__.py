"""Read a run's trace back and show it: the node tree, the live context at a step, an HTML page.

`load_trace` reads the JSON lines written by `thread/trace.py`; `Trace.live_at`, `Trace.tree`,
`Trace.live_series` and `Trace.ledger` answer what the runtime did. `render_html` writes one
self-contained page. Terminal rendering belongs to the CLI (`thread/cli/trace_cmd.py`).
"""

from thread.report.html import render_html
from thread.report.live import LiveContext, LiveText, PrunedRun
from thread.report.nodes import ToolCall, TraceNode
from thread.report.reader import (
    PruneRecord, TokenRecord, ToolRecord, Trace, TraceError, ledger_rows, load_trace,
)

__all__ = [
    "LiveContext", "LiveText", "PrunedRun", "PruneRecord", "TokenRecord", "ToolCall", "ToolRecord",
    "Trace", "TraceError", "TraceNode", "ledger_rows", "load_trace", "render_html",
]
