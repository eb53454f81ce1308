"""The HTML report: self-contained, escaped, and working in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from trace_fixtures import HOSTILE, small_tasks, write_trace, write_truncated

from thread.report import load_trace, render_html
from thread.report.html import page_data
from thread.report.plot import nice_ticks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


class _Elements(HTMLParser):
    """Tag names and attributes of every element, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


def report(tmp_path: Path, **kwargs) -> tuple[Path, str]:
    page = render_html(load_trace(write_trace(tmp_path / "run.jsonl", **kwargs)))
    out = tmp_path / "report.html"
    out.write_text(page, encoding="utf-8")
    return out, page


def test_page_needs_nothing_from_the_network(tmp_path):
    _, page = report(tmp_path)
    parsed = elements(page)
    assert not [a for tag, a in parsed.tags if tag in ("link", "img", "iframe") or "src" in a]
    assert not re.search(r"https?://|@import|url\(", page)


def test_page_has_tree_plot_ledger_and_slider(tmp_path):
    _, page = report(tmp_path)
    tags = elements(page).tags
    nodes = [a for tag, a in tags if tag == "details"]
    assert len(nodes) == 5 and sum("pruned" in a["class"] for a in nodes) == 3
    assert ("input", {"type": "range", "id": "step", "min": "0", "max": "182", "value": "182"}) in tags
    assert sum(1 for tag, a in tags if tag == "g" and a.get("class") == "prune") == 2
    assert sum(1 for tag, a in tags if tag == "g" and a.get("class") == "tool") == 1
    assert '<tr><th>decoded</th><td>182</td></tr>' in page


def test_hostile_trace_text_stays_text(tmp_path):
    _, page = report(tmp_path, tasks=small_tasks(HOSTILE), task_text=HOSTILE)
    parsed = elements(page)
    assert [tag for tag, _ in parsed.tags].count("script") == 3  # error hook, data, page script
    assert not [a for tag, a in parsed.tags if tag == "img"]
    assert "&lt;/script&gt;&lt;script&gt;document.title=&#x27;pwned&#x27;" in page
    data = json.loads(parsed.scripts[1])
    assert HOSTILE in "".join(data["texts"])


def test_embedded_data_is_one_entry_per_token_not_per_step(tmp_path):
    trace = load_trace(write_trace(tmp_path / "run.jsonl"))
    data = page_data(trace)
    assert len(data["texts"]) == len(data["steps"]) == len(data["pruned_by"]) == len(trace.tokens)
    assert data["prunes"] == [
        {"step": 156, "label": "task 0.1 at step 156", "mode": "exact"},
        {"step": 169, "label": "task 0 at step 169", "mode": "exact"},
    ]


def test_nice_ticks_are_round_and_cover_the_top():
    assert nice_ticks(182) == [0, 50, 100, 150, 200]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(0) == [0]


def png_colours(path: Path) -> int:
    """Distinct pixel colours of an 8-bit RGB(A) non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"{depth=} {colour_type=}"
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    colours, previous = set(), bytearray(stride)
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        if row % 4 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels * 4))
        previous = line
    return len(colours)


def chromium(page: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900", *flags, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


@needs_chromium
@pytest.mark.parametrize("kind", ["done", "hostile", "crashed"])
def test_chromium_runs_the_page_without_script_errors(tmp_path, kind):
    if kind == "crashed":
        out = tmp_path / "report.html"
        out.write_text(render_html(load_trace(write_truncated(tmp_path / "crash.jsonl"))), encoding="utf-8")
    elif kind == "hostile":
        out, _ = report(tmp_path, tasks=small_tasks(HOSTILE), task_text=HOSTILE)
    else:
        out, _ = report(tmp_path)
    dom = chromium(out, tmp_path, "--dump-dom").stdout
    assert re.search(r'<html lang="en" data-check="ok">', dom), dom[:300]
    assert re.search(r'<p id="live-info">step \d+ of \d+: \d+ live tokens, \d+ pruned</p>', dom)
    assert '<p id="live-warning" hidden="">' in dom  # the page's recount matches the recorded size
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom).group(1)
    assert "<img" not in dom


@needs_chromium
def test_chromium_screenshot_shows_the_report(tmp_path):
    out, _ = report(tmp_path)
    shot = tmp_path / "report.png"
    run = chromium(out, tmp_path, f"--screenshot={shot}", "--enable-logging=stderr", "--v=0")
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    assert "Uncaught" not in run.stderr
    assert png_colours(shot) > 20
