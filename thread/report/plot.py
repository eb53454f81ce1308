"""The live-size plot as inline SVG: live tokens against step, prunes and tool calls marked.

Drawn here rather than in the browser so that the page shows it without JS and tests can read
it. Long traces are thinned to one min/max/last triple per pixel column, which keeps every
peak and every drop visible. The page's JS only moves the step cursor (`#cursor`).
"""

from __future__ import annotations

import math
from html import escape

from thread.report.reader import PruneRecord, ToolRecord, Trace

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 18, 38
MAX_MARKED = 80  # past this many prunes and tool calls, each is a thin tick without its own title


LEGEND = (
    '<p class="legend"><span class="key live"></span>live tokens '
    '<span class="key prune"></span>prune <span class="key tool"></span>tool call '
    '<span class="key cursor"></span>slider step</p>'
)


def nice_ticks(top: float, count: int = 6) -> list[int]:
    """Round tick values from 0 to at least `top`: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return list(range(0, int(top) + step, int(step)))


class _Scale:
    def __init__(self, last_step: int, max_live: int) -> None:
        self.x_top = max(last_step, 1)
        self.x_ticks = [t for t in nice_ticks(self.x_top) if t <= self.x_top]
        self.y_ticks = nice_ticks(max(max_live, 1), count=4)
        self.y_top = self.y_ticks[-1]

    def x(self, step: float) -> float:
        return round(LEFT + step / self.x_top * (WIDTH - LEFT - RIGHT), 2)

    def y(self, live: float) -> float:
        return round(HEIGHT - BOTTOM - live / self.y_top * (HEIGHT - TOP - BOTTOM), 2)


def _line_path(series: list[tuple[int, int]], scale: _Scale) -> str:
    """A step line; one min/max/last per pixel column when the series is longer than the width."""
    if not series:
        return ""
    parts = [f"M{scale.x(series[0][0])} {scale.y(series[0][1])}"]
    column: list[tuple[int, int]] = []

    def flush() -> None:
        lives = [live for _, live in column]
        parts.append(f"H{scale.x(column[0][0])}")
        parts.extend(f"V{scale.y(v)}" for v in (max(lives), min(lives), lives[-1]))

    for point in series[1:]:
        if column and int(scale.x(point[0])) != int(scale.x(column[0][0])):
            flush()
            column = []
        column.append(point)
    if column:
        flush()
    return " ".join(parts)


def _axes(scale: _Scale) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    out = [f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>']
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>')
    for step in scale.x_ticks:
        x = scale.x(step)
        out.append(f'<line class="tick" x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}"/>')
        out.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{step}</text>')
    for live in scale.y_ticks:
        y = scale.y(live)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y}" x2="{right}" y2="{y}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end">{live}</text>')
    out.append(f'<text x="{(LEFT + right) / 2}" y="{HEIGHT - 4}" text-anchor="middle">step</text>')
    middle = (TOP + bottom) / 2
    out.append(
        f'<text x="14" y="{middle}" text-anchor="middle" transform="rotate(-90 14 {middle})">live tokens</text>'
    )
    return out


def _prune_mark(prune: PruneRecord, scale: _Scale) -> str:
    x = scale.x(prune.step)
    before = prune.live_before if prune.live_before is not None else prune.live_after
    title = escape(f"prune of {prune.label}: {prune.mode}, freed {prune.freed}")
    return (
        f'<g class="prune"><title>{title}</title>'
        f'<line x1="{x}" y1="{scale.y(before or 0)}" x2="{x}" y2="{scale.y(prune.live_after or 0)}"/>'
        f'<path d="M{x - 4} {TOP - 10}h8l-4 7z"/></g>'
    )


def _tool_mark(tool: ToolRecord, scale: _Scale) -> str:
    x = scale.x(tool.step)
    error = f" (error: {tool.error})" if tool.error else ""
    title = escape(f"tool {tool.name} at step {tool.step}{error}")
    return f'<g class="tool"><title>{title}</title><circle cx="{x}" cy="{HEIGHT - BOTTOM}" r="4"/></g>'


def _dense_marks(trace: Trace, scale: _Scale) -> list[str]:
    """Many events: one thin tick per event, in one path per kind, with a count as its title."""
    bottom = HEIGHT - BOTTOM
    prunes = "".join(f"M{scale.x(p.step)} {TOP - 10}v6" for p in trace.prunes)
    tools = "".join(f"M{scale.x(t.step)} {bottom + 1}v5" for t in trace.tools)
    return [
        f'<g class="prune dense"><title>{len(trace.prunes)} prunes</title><path d="{prunes}"/></g>',
        f'<g class="tool dense"><title>{len(trace.tools)} tool calls</title><path d="{tools}"/></g>',
    ]


def live_plot_svg(trace: Trace) -> str:
    series = trace.live_series()
    scale = _Scale(trace.last_step, max((live for _, live in series), default=1))
    out = [
        f'<svg id="plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'data-left="{LEFT}" data-right="{WIDTH - RIGHT}" data-x-top="{scale.x_top}" '
        f'aria-label="live tokens against step">',
        *_axes(scale),
        f'<path class="live" d="{_line_path(series, scale)}"/>',
    ]
    if len(trace.prunes) + len(trace.tools) <= MAX_MARKED:
        out += [_prune_mark(prune, scale) for prune in trace.prunes]
        out += [_tool_mark(tool, scale) for tool in trace.tools]
    else:
        out += _dense_marks(trace, scale)
    top = scale.x(trace.last_step)
    out.append(f'<line id="cursor" x1="{top}" y1="{TOP}" x2="{top}" y2="{HEIGHT - BOTTOM}"/>')
    out.append("</svg>")
    return LEGEND + "\n".join(out)
