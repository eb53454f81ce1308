"""One self-contained HTML page for a trace: tree, live-size plot, ledger and a step slider.

No CDN, no external fonts: CSS and JS are inlined from `page.css` and `page.js`. The trace
is embedded once as JSON (token texts, steps, which prune took each token), and the page's JS
computes the live context at any step from that; all trace text is escaped, as it is model output.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from thread.report.nodes import TraceNode
from thread.report.plot import live_plot_svg
from thread.report.reader import Trace, ledger_rows

HERE = Path(__file__).resolve().parent
MAX_OPEN_NODES = 200  # bigger trees start with only the top two levels unfolded


def render_html(trace: Trace) -> str:
    """The whole page as a string."""
    root = trace.tree()
    num_nodes = len(root.walk())
    title = f"thread trace: {trace.path.name}"
    body = [
        f"<header><h1>{escape(title)}</h1>{_summary(trace)}</header>",
        '<section id="plot-section"><h2>Live tokens by step</h2>',
        live_plot_svg(trace),
        "</section>",
        _slider(trace),
        '<div class="columns"><section><h2>Tree</h2>',
        _node_html(root, depth=0, open_all=num_nodes <= MAX_OPEN_NODES),
        "</section><section><h2>Ledger</h2>",
        _ledger_html(trace),
        _errors_html(trace),
        "</section></div>",
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            f"<style>{(HERE / 'page.css').read_text(encoding='utf-8')}</style>",
            "<script>window.addEventListener('error', function (e) { document.documentElement"
            ".setAttribute('data-check', 'error: ' + e.message); });</script>",
            "</head><body>",
            *body,
            f'<script type="application/json" id="trace-data">{_embed(page_data(trace))}</script>',
            f"<script>{(HERE / 'page.js').read_text(encoding='utf-8')}</script>",
            "</body></html>",
        ]
    )


def page_data(trace: Trace) -> dict[str, Any]:
    """What the page's JS needs: one entry per token, one per prune, the plot's scale."""
    series = trace.live_series()
    return {
        "texts": [t.text for t in trace.tokens],
        "steps": trace.token_steps,
        "pruned_by": trace.pruned_by,
        "prunes": [{"step": p.step, "label": p.label, "mode": p.mode} for p in trace.prunes],
        "last_step": trace.last_step,
        "recorded_live": dict(series),
    }


def _embed(data: dict[str, Any]) -> str:
    """JSON safe inside <script>: no `<`, `>` or `&` survive, so `</script>` cannot close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _summary(trace: Trace) -> str:
    start = trace.start
    items = [("status", trace.status), ("steps", trace.last_step), ("prunes", len(trace.prunes))]
    items += [(key, start[key]) for key in ("model", "format", "rules", "task") if key in start]
    if trace.end is not None and trace.end.get("answer") is not None:
        items.append(("answer", trace.end["answer"]))
    if trace.is_truncated:
        items.append(("note", "the last line was cut off: the run crashed"))
    cells = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(_text(v))}</dd></div>" for k, v in items)
    return f'<dl class="summary status-{escape(trace.status)}">{cells}</dl>'


def _slider(trace: Trace) -> str:
    last = trace.last_step
    return (
        '<section id="replay"><h2>Live context at a step</h2>'
        f'<div class="controls"><input type="range" id="step" min="0" max="{last}" value="{last}">'
        f'<input type="number" id="step-number" min="0" max="{last}" value="{last}">'
        '<button id="prev-prune" type="button">◀ prune</button>'
        '<button id="next-prune" type="button">prune ▶</button></div>'
        '<p id="live-info"></p><p id="live-warning" hidden></p>'
        '<pre id="live"></pre></section>'
    )


def _node_html(node: TraceNode, depth: int, open_all: bool) -> str:
    classes = ["node"] + (["pruned"] if node.pruned else [])
    if node.path and not node.is_closed:
        classes.append("open-node")
    heading = f'<span class="path">{escape("task " + node.path if node.path else "document")}</span>'
    if node.label:
        heading += f' <span class="label">{escape(_short(node.label, 120))}</span>'
    if node.pruned is not None:
        words = f"pruned at step {node.pruned.step} ({node.pruned.mode})"
        heading += f' <span class="badge prune">{escape(words)}</span>'
    lines = []
    if node.tool is not None:
        outcome = f"error: {node.tool.error}" if node.tool.error else _text(node.tool.result)
        arguments = _short(_text(node.tool.arguments), 120)
        lines.append(("tool", f"{node.tool.name} {arguments} → {_short(outcome, 160)}"))
    for name in ("conclusion", "answer"):
        if name in node.fields:
            lines.append((name, _short(_text(node.fields[name]), 200)))
    for name, prune in node.pruned_fields.items():
        if prune is not node.pruned:
            lines.append(("prune", f"{name} pruned at step {prune.step} ({prune.mode})"))
    if node.error:
        lines.append(("error", node.error))
    elif node.path and not node.is_closed:
        lines.append(("open", "still open when the trace ended"))
    details = "".join(f'<div class="line {k}"><b>{escape(k)}</b> {escape(v)}</div>' for k, v in lines)
    children = "".join(_node_html(c, depth + 1, open_all) for c in node.children)
    is_open = " open" if open_all or depth < 2 else ""
    return (
        f'<details class="{" ".join(classes)}"{is_open}><summary>{heading}</summary>'
        f'{details}<div class="children">{children}</div></details>'
    )


def _ledger_html(trace: Trace) -> str:
    ledger, is_partial = trace.ledger()
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(_number(v))}</td></tr>" for k, v in ledger_rows(ledger)
    )
    note = '<p class="note">Recomputed from the lines: the trace has no end line.</p>' if is_partial else ""
    return f'{note}<table class="ledger">{rows}</table>'


def _errors_html(trace: Trace) -> str:
    if not trace.errors:
        return ""
    items = "".join(
        f"<li>step {e['step']}: {escape(_text(e['where']))}: {escape(_text(e['message']))}</li>"
        for e in trace.errors
    )
    return f'<h2>Errors</h2><ul class="errors">{items}</ul>'


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _text(value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
