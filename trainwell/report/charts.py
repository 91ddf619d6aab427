"""Figures as inline SVG text: line charts, heat maps, bar charts, histograms and scatter plots.

Hand-written rather than drawn by a plotting library: a report opens with no network and no script, a
figure costs a few kilobytes, stays sharp when zoomed or printed, and its labels are text the page can
search. Every label passes through `esc`, so a class named `<script>` is drawn as those characters.
"""
from __future__ import annotations

import math
from html import escape
from typing import Any, Iterable, Sequence

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def esc(text: Any) -> str:
    return escape(str(text), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """About n round values spanning [lo, hi] (whole numbers only, for epochs and steps, when `integer`)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = max((hi - lo) / max(1, n), 1.0 if integer else 0.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt(v: float, percent: bool = False) -> str:
    if percent:
        return f"{v * 100:.3g}%"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.3g}"


class _Frame:
    """Plot area and scales shared by the x-y charts."""

    def __init__(self, width: int, height: int, xs: Iterable[float], ys: Iterable[float], log_x: bool = False,
                 log_y: bool = False, left: int = 52, y_floor: float | None = None, integer_x: bool = False) -> None:
        self.w, self.h = width, height
        self.l, self.r, self.t, self.b = left, 12, 24, 34
        self.log_x, self.log_y, self.integer_x = log_x, log_y, integer_x
        xs = [x for x in xs if _ok(x, log_x)]
        ys = [y for y in ys if _ok(y, log_y)]
        self.x0, self.x1 = _span(xs, log_x)
        self.y0, self.y1 = _span(ys, log_y, floor=y_floor)

    def x(self, v: float) -> float:
        v, lo, hi = (math.log10(v), math.log10(self.x0), math.log10(self.x1)) if self.log_x else (v, self.x0, self.x1)
        return self.l + (v - lo) / (hi - lo) * (self.w - self.l - self.r)

    def y(self, v: float) -> float:
        v, lo, hi = (math.log10(v), math.log10(self.y0), math.log10(self.y1)) if self.log_y else (v, self.y0, self.y1)
        return self.h - self.b - (v - lo) / (hi - lo) * (self.h - self.t - self.b)

    def axes(self, xlabel: str, ylabel: str, percent: bool = False, x_ticks: bool = True) -> list[str]:
        out = [f'<rect x="{self.l}" y="{self.t}" width="{self.w - self.l - self.r}" '
               f'height="{self.h - self.t - self.b}" fill="#fff" stroke="#bbb"/>']
        for v in _axis_ticks(self.y0, self.y1, self.log_y):
            y = self.y(v)
            out.append(f'<line x1="{self.l}" x2="{self.w - self.r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            out.append(f'<text x="{self.l - 4}" y="{y + 3:.1f}" text-anchor="end">{esc(fmt(v, percent))}</text>')
        for v in _axis_ticks(self.x0, self.x1, self.log_x, self.integer_x) if x_ticks else []:
            x = self.x(v)
            out.append(f'<text x="{x:.1f}" y="{self.h - self.b + 13}" text-anchor="middle">{esc(fmt(v))}</text>')
        out.append(f'<text x="{(self.l + self.w - self.r) / 2:.0f}" y="{self.h - 4}" text-anchor="middle">'
                   f'{esc(xlabel)}</text>')
        if ylabel:
            out.append(f'<text transform="translate(11 {(self.t + self.h - self.b) / 2:.0f}) rotate(-90)" '
                       f'text-anchor="middle">{esc(ylabel)}</text>')
        return out


def _ok(v: Any, log: bool) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not log)


def _span(values: list[float], log: bool, floor: float | None = None) -> tuple[float, float]:
    if not values:
        return (1.0, 10.0) if log else (0.0, 1.0)
    lo, hi = min(values), max(values)
    if floor is not None and not log:
        lo = min(lo, floor)
    if log:
        if hi <= lo:
            return lo / 2, hi * 2
        return lo, hi
    if hi <= lo:
        return lo - 0.5 if lo == 0 else lo - abs(lo) * 0.1, hi + 0.5 if hi == 0 else hi + abs(hi) * 0.1
    pad = (hi - lo) * 0.04
    return (lo if floor is not None and lo == floor else lo - pad), hi + pad


def _axis_ticks(lo: float, hi: float, log: bool, integer: bool = False) -> list[float]:
    if not log:
        return [v for v in ticks(lo, hi, integer=integer) if lo <= v <= hi]
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    step = max(1, (b - a) // 5)
    out = [10.0 ** e for e in range(a, b + 1, step) if lo <= 10.0 ** e <= hi]
    if len(out) < 3:  # less than two decades: 1, 2, 5 steps
        out = sorted(m * 10.0 ** e for e in range(a, b + 1) for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi)
    return out or [lo, hi]


def _svg(width: int, height: int, title: str, body: list[str], label: str = "") -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{esc(label or title)}" {FONT}>'
            f'<text x="{width / 2:.0f}" y="14" text-anchor="middle" font-weight="600">{esc(title)}</text>'
            + "".join(body) + "</svg>")


def line_chart(series: Sequence[dict[str, Any]], *, title: str, xlabel: str = "epoch", ylabel: str = "",
               log_y: bool = False, percent: bool = False, marks: Sequence[dict[str, Any]] = (),
               width: int = 520, height: int = 250, y_floor: float | None = None) -> str:
    """series: [{"name", "x": [...], "y": [...], "dash": bool}]; points with a None or non-finite y are
    gaps. marks: [{"x", "label", "color"}] drawn as vertical lines (the selected epoch, a recovery)."""
    xs = [x for s in series for x in s["x"]]
    ys = [y for s in series for y in s["y"]]
    f = _Frame(width, height, xs, ys, log_y=log_y, y_floor=y_floor, integer_x=xlabel in ("epoch", "step", "trial"))
    body = f.axes(xlabel, ylabel, percent)
    for k, m in enumerate(marks):
        if not _ok(m.get("x"), False):
            continue
        x, c = f.x(m["x"]), m.get("color", "#555")
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.t}" y2="{height - f.b}" stroke="{c}" '
                    f'stroke-dasharray="4 3"/>')
        right_half = x > (f.l + width - f.r) / 2  # label on the side with room, below the legend
        anchor, dx = ("end", -3) if right_half else ("start", 3)
        body.append(f'<text x="{x + dx:.1f}" y="{height - f.b - 6 - 12 * (k % 3)}" fill="{c}" text-anchor="{anchor}" '
                    f'paint-order="stroke" stroke="#fff" stroke-width="3">{esc(m.get("label", ""))}</text>')
    for i, s in enumerate(series):
        c = s.get("color") or color(i)
        dash = ' stroke-dasharray="5 3"' if s.get("dash") else ""
        for run in _segments(s["x"], s["y"], log_y):
            if len(run) == 1:
                x, y = run[0]
                body.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(y):.1f}" r="2.5" fill="{c}"/>')
                continue
            pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in run)
            body.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="1.6"{dash}/>')
    body += _legend([(s["name"], s.get("color") or color(i), s.get("dash", False)) for i, s in enumerate(series)],
                    width - f.r - 4, f.t + 4)
    return _svg(width, height, title, body)


def _segments(xs: Sequence[Any], ys: Sequence[Any], log: bool) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if _ok(x, False) and _ok(y, log):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _legend(items: list[tuple[str, str, bool]], right: float, top: float) -> list[str]:
    items = [it for it in items if it[0]]  # unnamed series (one line, or many alike) need no legend
    if not items:
        return []
    out = []
    for i, (name, c, dash) in enumerate(items[:12]):
        y = top + 6 + i * 13
        d = ' stroke-dasharray="5 3"' if dash else ""
        out.append(f'<line x1="{right - 14}" x2="{right}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2"{d}/>')
        out.append(f'<text x="{right - 18}" y="{y + 4}" text-anchor="end" paint-order="stroke" stroke="#fff" '
                   f'stroke-width="3">{esc(name)}</text>')
    if len(items) > 12:
        out.append(f'<text x="{right}" y="{top + 6 + 12 * 13 + 4}" text-anchor="end">+{len(items) - 12} more</text>')
    return out


def heatmap(matrix: Sequence[Sequence[float]], *, title: str, rows: Sequence[str] = (), cols: Sequence[str] = (),
            xlabel: str = "", ylabel: str = "", lo: float | None = None, hi: float | None = None,
            diverging: bool = False, numbers: Sequence[Sequence[Any]] | None = None, cell: int | None = None) -> str:
    """A matrix as coloured cells (blue..white..red when diverging, white..blue otherwise), optional
    numbers in the cells and labels along both sides."""
    n, m = len(matrix), len(matrix[0]) if matrix else 0
    flat = [v for r in matrix for v in r if isinstance(v, (int, float)) and math.isfinite(v)]
    lo = min(flat, default=0.0) if lo is None else lo
    hi = max(flat, default=1.0) if hi is None else hi
    cell = cell or max(8, min(34, 340 // max(1, n, m)))
    label_w = (min(110, 7 * max((len(str(r)) for r in rows), default=0) + 8)) if rows else 8
    top, left = 26, label_w + (16 if ylabel else 0)
    bottom = 62 if cols else 20
    width, height = left + m * cell + 12, top + n * cell + bottom
    body = []
    for i, r in enumerate(matrix):
        for j, v in enumerate(r):
            fill = _heat(v, lo, hi, diverging)
            body.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                        f'fill="{fill}"><title>{esc(_cell_title(rows, cols, i, j, v))}</title></rect>')
            if numbers is not None and cell >= 18:
                t = numbers[i][j]
                if t not in (None, "", 0):
                    dark = _darkness(v, lo, hi, diverging) > 0.55
                    body.append(f'<text x="{left + j * cell + cell / 2:.1f}" y="{top + i * cell + cell / 2 + 4:.1f}" '
                                f'text-anchor="middle" font-size="9" fill="{"#fff" if dark else "#222"}">'
                                f'{esc(t)}</text>')
    for i, r in enumerate(rows):
        body.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4:.1f}" text-anchor="end">'
                    f'{esc(_short(r))}</text>')
    for j, c in enumerate(cols):
        x = left + j * cell + cell / 2
        body.append(f'<text transform="translate({x + 3:.1f} {top + n * cell + 6}) rotate(-45)" '
                    f'text-anchor="end">{esc(_short(c))}</text>')
    if xlabel:
        body.append(f'<text x="{left + m * cell / 2:.0f}" y="{height - 4}" text-anchor="middle">{esc(xlabel)}</text>')
    if ylabel:
        body.append(f'<text transform="translate(11 {top + n * cell / 2:.0f}) rotate(-90)" text-anchor="middle">'
                    f'{esc(ylabel)}</text>')
    return _svg(width, height, title, body)


def _short(text: Any, n: int = 16) -> str:
    text = str(text)
    return text if len(text) <= n else text[:n - 1] + "…"


def _cell_title(rows: Sequence[str], cols: Sequence[str], i: int, j: int, v: float) -> str:
    r = rows[i] if i < len(rows) else i
    c = cols[j] if j < len(cols) else j
    return f"{r} / {c}: {fmt(v) if isinstance(v, (int, float)) else v}"


def _darkness(v: float, lo: float, hi: float, diverging: bool) -> float:
    if not isinstance(v, (int, float)) or not math.isfinite(v) or hi <= lo:
        return 0.0
    t = (v - lo) / (hi - lo)
    return abs(2 * t - 1) if diverging else t


def _heat(v: float, lo: float, hi: float, diverging: bool) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "#ddd"
    t = 0.5 if hi <= lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))
    if diverging:  # blue (low) - white - red (high)
        a = abs(2 * t - 1)
        base = (178, 24, 43) if t > 0.5 else (33, 102, 172)
    else:
        a, base = t, (8, 69, 148)
    r, g, b = (round(255 + (c - 255) * a) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}"


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, percent: bool = False,
         width: int = 420, highlight: Sequence[bool] | None = None) -> str:
    """Horizontal bars, one per label (per-class error, parameter importances)."""
    label_w = min(130, 7 * max((len(str(x)) for x in labels), default=4) + 10)
    row = 18
    height = 30 + row * len(labels) + 8
    hi = max([v for v in values if isinstance(v, (int, float)) and math.isfinite(v)] + [1e-12])
    span = width - label_w - 60
    body = []
    for i, (name, v) in enumerate(zip(labels, values)):
        y = 26 + i * row
        w = 0 if not isinstance(v, (int, float)) or not math.isfinite(v) else max(0.0, v) / hi * span
        c = "#d62728" if highlight is not None and highlight[i] else "#1f77b4"
        body.append(f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end">{esc(_short(name, 18))}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{c}">'
                    f'<title>{esc(name)}: {esc(fmt(v, percent))}</title></rect>')
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}">{esc(fmt(v, percent))}</text>')
    return _svg(width, height, title, body)


def histogram(counts: Sequence[float], edges: Sequence[float], *, title: str, xlabel: str = "",
              overlay: Sequence[float] | None = None, overlay_edges: Sequence[float] | None = None,
              names: tuple[str, str] = ("", ""), width: int = 300, height: int = 190, log_y: bool = False) -> str:
    """Bars of counts over edges (len(edges) = len(counts) + 1); `overlay` (over `overlay_edges`, or the same
    edges) drawn as a line on the same axes, e.g. the histogram at initialisation under the latest one."""
    overlay_edges = overlay_edges or edges
    positive = sorted(c for c in [*counts, *(overlay or [])] if c > 0)
    log_y = log_y or (len(positive) > 2 and positive[-1] > 20 * positive[-2])  # a spike (ReLU's zeros) hides the rest
    values = positive if log_y else [0, *counts, *(overlay or [])]
    xs = [edges[0], edges[-1]] + ([overlay_edges[0], overlay_edges[-1]] if overlay is not None else [])
    f = _Frame(width, height, xs, values, y_floor=None if log_y else 0.0, left=44, log_y=log_y)
    f.t = 22
    body = f.axes(xlabel, "count (log)" if log_y else "", False)
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c > 0:
            y = f.y(c)
            body.append(f'<rect x="{f.x(a):.1f}" y="{y:.1f}" width="{max(0.5, f.x(b) - f.x(a) - 0.5):.1f}" '
                        f'height="{height - f.b - y:.1f}" fill="#1f77b4" fill-opacity="0.75"/>')
    if overlay is not None:
        mids = [(a + b) / 2 for a, b in zip(overlay_edges[:-1], overlay_edges[1:])]
        pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in zip(mids, overlay) if y > 0 or not log_y)
        body.append(f'<polyline points="{pts}" fill="none" stroke="#d62728" stroke-width="1.4"/>')
        body += _legend([(names[0], "#1f77b4", False), (names[1], "#d62728", False)], width - f.r - 4, f.t + 2)
    return _svg(width, height, title, body)


def scatter(points: Sequence[dict[str, Any]], *, title: str, xlabel: str, ylabel: str, log_x: bool = False,
            percent_y: bool = False, width: int = 360, height: int = 240,
            categories: Sequence[str] | None = None, legend: Sequence[tuple[str, str]] = ()) -> str:
    """points: [{"x", "y", "color", "label"}]; with `categories`, x is an index into them (a categorical
    parameter drawn as columns)."""
    if categories:
        xs = [-0.5, len(categories) - 0.5]
    else:
        xs = [p["x"] for p in points]
    f = _Frame(width, height, xs, [p["y"] for p in points], log_x=log_x and not categories)
    body = f.axes(xlabel, ylabel, percent_y, x_ticks=not categories)
    for i, c in enumerate(categories or []):  # a categorical parameter: its values name the columns
        body.append(f'<text x="{f.x(i):.1f}" y="{height - f.b + 13}" text-anchor="middle">{esc(_short(c, 14))}</text>')
    for p in points:
        if not (_ok(p["x"], f.log_x) and _ok(p["y"], False)):
            continue
        body.append(f'<circle cx="{f.x(p["x"]):.1f}" cy="{f.y(p["y"]):.1f}" r="3.5" fill="{p.get("color", "#1f77b4")}" '
                    f'fill-opacity="0.8"><title>{esc(p.get("label", ""))}</title></circle>')
    body += _legend([(n, c, False) for n, c in legend], width - f.r - 4, f.t + 2) if legend else []
    return _svg(width, height, title, body)
