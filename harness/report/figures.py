"""The pictures of report.html, drawn from collect's aggregates as inline SVG: training curves and per-layer
heatmaps with the anomaly and warnings marked. A heatmap's cells are one palette PNG (a pixel per cell)
inside the SVG; labels, frames and hatching are SVG on top, so a 400-blob net draws in milliseconds.
"""
from __future__ import annotations

import base64
import math
from typing import Optional

from ..core.netinfo import NetInfo
from .collect import FINITE, INF, MISSING, NAN, ZERO, Cells, RunData, heatmap_of, marks
from .drawing import CYCLE, colour_at, hex_colour, number, palette_png, rgb, text, ticks

RED = "#c62828"
SPECIAL = {MISSING: "#ffffff", ZERO: "#c8c8c8", INF: "#ff9800", NAN: "#d50000"}
LEVELS = 256 - len(SPECIAL)   # palette entries left for the colour scale
MAX_POINTS = 1000             # a curve longer than this keeps each stretch's first, lowest, highest and last point


def _svg(width: float, height: float, body: list, css_class: str) -> str:
    return (f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" font-family="system-ui,sans-serif" font-size="11">'
            + "".join(body) + "</svg>")


# ---------------------------------------------------------------- curves

def _panels(data: RunData) -> list:
    """(title, {label: Series}) for each curve panel that has something to show."""
    accuracy = {k: s for k, s in {**data.train, **data.test}.items() if "acc" in k.lower()}
    losses = {k: s for k, s in {**data.train, **data.test}.items() if k not in accuracy}
    panels = [("Loss (train and test)", losses), ("Accuracy", accuracy), ("Learning rate", {"lr": data.lr}),
              ("L2 norm of all parameter gradients", {"L2 norm (diff)": data.grad_norm})]
    return [(title, {k: s for k, s in group.items() if s.steps}) for title, group in panels
            if any(s.steps for s in group.values())]


def _thin(points: list) -> list:
    """At most about MAX_POINTS points: per stretch its first, lowest, highest and last, so spikes stay."""
    if len(points) <= MAX_POINTS:
        return points
    size = math.ceil(len(points) / (MAX_POINTS // 4))
    kept = []
    for start in range(0, len(points), size):
        chunk = points[start:start + size]
        picks = {0, len(chunk) - 1, min(range(len(chunk)), key=lambda i: chunk[i][1]),
                 max(range(len(chunk)), key=lambda i: chunk[i][1])}
        kept += [chunk[i] for i in sorted(picks)]
    return kept


class _Axes:
    """A panel's coordinate system: x in iterations, y linear or log10."""

    def __init__(self, x0, y0, width, height, x_range, values, log, from_zero):
        self.x0, self.y0, self.width, self.height, self.log = x0, y0, width, height, log
        self.x_low, self.x_high = x_range
        ys = [math.log10(v) for v in values] if log else list(values)
        low, high = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if from_zero and not log:
            low = min(low, 0.0)
        pad = (high - low) * 0.05 if high > low else max(abs(high) * 0.05, 0.5)
        self.y_low, self.y_high = low - (0 if from_zero and low == 0 and not log else pad), high + pad

    def x(self, step: float) -> float:
        return self.x0 + (step - self.x_low) / (self.x_high - self.x_low) * self.width

    def y(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.y0 + self.height - (v - self.y_low) / (self.y_high - self.y_low) * self.height

    def y_ticks(self) -> list:
        if self.log:
            first, last = math.ceil(self.y_low), math.floor(self.y_high)
            step = max(1, math.ceil((last - first + 1) / 7))   # at most about 7 decades labelled
            return [(10.0 ** k, f"1e{k}") for k in range(first, last + 1, step)]
        return [(v, number(v)) for v in ticks(self.y_low, self.y_high, 5) if self.y_low <= v <= self.y_high]


def _panel(title: str, group: dict, data: RunData, verdict: dict) -> str:
    width, height, left, top, right, bottom = 590, 250, 62, 24, 12, 36
    finite = {label: [(s, v) for s, v in zip(series.steps, series.values) if math.isfinite(v)]
              for label, series in group.items()}
    values = [v for points in finite.values() for _, v in points]
    # Axes switch to log scale when the values span more than a factor 100 (as the docs say).
    log = bool(values) and min(values) > 0 and max(values) / min(values) > 100
    axes = _Axes(left, top, width - left - right, height - top - bottom, (-0.5, max(data.last_iteration, 1) + 0.5),
                 values, log, from_zero=title == "Learning rate")
    body = [f'<text x="4" y="15" font-weight="bold" font-size="12">{text(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{axes.width}" height="{axes.height}" fill="none" stroke="#999"/>']
    for value, label in axes.y_ticks():
        y = axes.y(value)
        body.append(f'<line x1="{left}" x2="{left + axes.width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
                    f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for step in ticks(0, max(data.last_iteration, 1), 6, integer=True):
        x = axes.x(step)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + axes.height}" stroke="#e4e4e4"/>'
                    f'<text x="{x:.1f}" y="{top + axes.height + 14}" text-anchor="middle">{step}</text>')
    body.append(f'<text x="{left + axes.width / 2}" y="{height - 4}" text-anchor="middle">iteration</text>')
    body += _anomaly_line(axes.x, top, axes.height, verdict, shade=True)
    legend = []
    for i, (label, series) in enumerate(group.items()):
        colour = CYCLE[i % len(CYCLE)]
        points = _thin(finite[label])
        faint = label == "loss" and "smoothed loss" in group
        stroke = 2.2 if "smoothed" in label else 1.4
        opacity = ' stroke-opacity="0.5"' if faint else ""
        if points:
            path = " ".join(f"{axes.x(s):.1f},{axes.y(v):.1f}" for s, v in points)
            body.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" '
                        f'stroke-width="{stroke}"{opacity}/>')
            if len(points) <= 30:
                body += [f'<circle cx="{axes.x(s):.1f}" cy="{axes.y(v):.1f}" r="2.5" fill="{colour}"/>'
                         for s, v in points]
            legend.append((label, colour, False))
        bad = sorted({round(axes.x(s)) for s, v in zip(series.steps, series.values) if not math.isfinite(v)})
        if bad:   # non-finite points have no height: crosses on the top edge
            body += [f'<path class="nonfinite" d="M{x - 4},{top - 4}l8,8m-8,0l8,-8" stroke="{RED}" '
                     'stroke-width="2"/>' for x in bad]
            legend.append((f"{label}: NaN/Inf", RED, True))
    for k, (label, colour, cross) in enumerate(legend):
        y = top + 14 + 14 * k
        mark = (f'<path d="M{left + 8},{y - 7}l8,8m-8,0l8,-8" stroke="{colour}" stroke-width="2"/>' if cross else
                f'<line x1="{left + 6}" x2="{left + 20}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>')
        body.append(f'{mark}<text x="{left + 24}" y="{y}" font-size="10">{text(label)}</text>')
    return _svg(width, height, body, "curves")


def _anomaly_line(x_of, top: float, height: float, verdict: dict, shade: bool) -> list:
    """The dashed red line at the anomaly's iteration; for a streak (dead, ...) the span up to its confirmation."""
    anomaly = verdict.get("anomaly")
    if not isinstance(anomaly, dict) or not isinstance(anomaly.get("iteration"), int):
        return []
    start = anomaly["iteration"]
    confirmed = (anomaly.get("evidence") or {}).get("confirmed_at")
    out = []
    if shade and isinstance(confirmed, int) and confirmed > start:
        out.append(f'<rect x="{x_of(start):.1f}" y="{top}" width="{x_of(confirmed) - x_of(start):.1f}" '
                   f'height="{height}" fill="{RED}" fill-opacity="0.08"/>')
    x = x_of(start)
    return out + [f'<line class="anomaly-line" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + height}" '
                  f'stroke="{RED}" stroke-width="1.4" stroke-dasharray="5,3"/>']


def render_curves(data: RunData, verdict: dict) -> Optional[str]:
    panels = _panels(data)
    if not panels:
        return None
    return '<div class="panels">' + "".join(_panel(title, group, data, verdict) for title, group in panels) + "</div>"


# ---------------------------------------------------------------- heatmaps

def _cell_png(values, categories, low: float, high: float, cmap: str) -> str:
    """The cells as a palette PNG, base64: special categories first in the palette, then the colour scale."""
    import numpy as np
    palette = [rgb(SPECIAL[c]) for c in sorted(SPECIAL)]
    palette += [colour_at(cmap, k / (LEVELS - 1)) for k in range(LEVELS)]
    scaled = np.nan_to_num((values - low) / (high - low), nan=0.0)
    indices = len(SPECIAL) + np.clip(np.rint(scaled * (LEVELS - 1)), 0, LEVELS - 1).astype(np.uint8)
    for slot, category in enumerate(sorted(SPECIAL)):
        indices[categories == category] = slot
    return base64.b64encode(palette_png(indices, palette)).decode("ascii")


def _runs(mask_row) -> list:
    """(start, length) of each run of True in a boolean row: one hatched rectangle per run, not per cell."""
    out, start = [], None
    for i, flag in enumerate(list(mask_row) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - start))
            start = None
    return out


def _patterns(prefix: str, cmap: str) -> str:
    return (f'<defs><pattern id="{prefix}-nan" width="6" height="6" patternUnits="userSpaceOnUse">'
            '<path d="M0,0l6,6M6,0l-6,6" stroke="#fff" stroke-width="0.9"/></pattern>'
            f'<pattern id="{prefix}-inf" width="5" height="5" patternUnits="userSpaceOnUse">'
            '<path d="M0,5l5,-5M-1,1l2,-2M4,6l2,-2" stroke="#fff" stroke-width="0.9"/></pattern>'
            f'<linearGradient id="{prefix}-scale" x1="0" y1="1" x2="0" y2="0">' + "".join(
                f'<stop offset="{k / 8:.3f}" stop-color="{hex_colour(colour_at(cmap, k / 8))}"/>' for k in range(9)) + "</linearGradient></defs>")


def render_heatmap(cells: Cells, keys: list, colour_label: str, verdict: dict, which: str,
                   cmap_name: str = "viridis", limits: Optional[tuple] = None,
                   net: Optional[NetInfo] = None) -> str:
    import numpy as np
    columns = cells.columns()
    values, categories = cells.matrix(keys, columns)
    finite = values[np.isfinite(values)]
    low, high = limits or ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    if not high > low:
        high = low + 1
    width = cells.width
    types = {layer.name: layer.type for layer in net.layers} if net is not None else {}
    labels = [f"{layer} ({types[layer]}) · {blob}" if layer in types else f"{layer} · {blob}" for layer, blob in keys]

    # Geometry: rows shrink for big nets (a 400-blob net is about 4,400 px tall), labels get what the longest needs.
    row = 16 if len(keys) <= 60 else 11
    label_width = min(max((len(label) for label in labels), default=10) * 6.0 + 12, 420)
    total_width, top, bottom, bar = 1180, 34, 42, 86
    x0, plot_width = label_width, total_width - label_width - bar
    plot_height = row * len(keys)
    cell_width = plot_width / max(columns, 1)

    def x_of(iteration: float) -> float:   # an iteration's centre; column c covers iterations c*width..c*width+width-1
        return x0 + (iteration + 0.5) / width * cell_width

    prefix = f"hm-{which}"
    body = [_patterns(prefix, cmap_name)]
    # Layer groups: every other layer's labels on a light band; a white rule between layers across the cells.
    group, previous = 0, None
    for r, (layer, _) in enumerate(keys):
        if layer != previous and previous is not None:
            group += 1
        previous = layer
        if group % 2:
            body.append(f'<rect x="0" y="{top + r * row}" width="{x0 - 2}" height="{row}" fill="#eef0f4"/>')
    font = 10 if row > 11 else 8.5
    for r, label in enumerate(labels):
        shown = label if len(label) * 6.0 + 12 <= label_width else label[:int((label_width - 12) / 6.0) - 1] + "…"
        tip = f"<title>{text(label)}</title>" if shown != label else ""
        body.append(f'<text x="{x0 - 5}" y="{top + r * row + row / 2 + font * 0.35:.1f}" text-anchor="end" '
                    f'font-size="{font}">{tip}{text(shown)}</text>')
    if keys:
        body.append(f'<image x="{x0}" y="{top}" width="{plot_width}" height="{plot_height}" preserveAspectRatio="none" '
                    f'style="image-rendering:pixelated" href="data:image/png;base64,'
                    f'{_cell_png(values, categories, low, high, cmap_name)}"/>')
    for category, name in ((NAN, "nan"), (INF, "inf")):
        for r in np.flatnonzero((categories == category).any(axis=1)):   # rows with such cells only
            for start, length in _runs(categories[r] == category):
                body.append(f'<rect x="{x0 + start * cell_width:.1f}" y="{top + r * row}" '
                            f'width="{length * cell_width:.1f}" height="{row}" fill="url(#{prefix}-{name})"/>')
    for r in range(1, len(keys)):
        if keys[r][0] != keys[r - 1][0]:
            y = top + r * row
            body.append(f'<line x1="{x0}" x2="{x0 + plot_width}" y1="{y}" y2="{y}" stroke="#fff" stroke-width="2"/>')
    if columns <= 30 and len(keys) * columns <= 600:   # few cells: write their values in
        for r, c in zip(*np.nonzero(categories == FINITE)):
            shade = colour_at(cmap_name, (values[r, c] - low) / (high - low))
            light = (0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]) / 255 > 0.55
            value = f"{values[r, c]:.2g}" if cells.log else f"{values[r, c]:.0%}"
            body.append(f'<text x="{x0 + (c + 0.5) * cell_width:.1f}" y="{top + r * row + row / 2 + 3.5:.1f}" '
                        f'text-anchor="middle" font-size="9" fill="{"#000" if light else "#fff"}">{value}</text>')
    # The x axis: iterations, with the binning said under it.
    axis_y = top + plot_height
    for step in ticks(0, max(columns * width - 1, 1), 10, integer=True):
        if step < columns * width:
            x = x_of(step)
            body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{axis_y}" y2="{axis_y + 4}" stroke="#555"/>'
                        f'<text x="{x:.1f}" y="{axis_y + 15}" text-anchor="middle">{step}</text>')
    binned = f" (each column: {width} iterations, their mean{'; NaN/Inf if any was' if cells.log else ''})"
    body.append(f'<text x="{x0 + plot_width / 2}" y="{axis_y + 32}" text-anchor="middle">'
                f'iteration{text(binned) if width > 1 else ""}</text>')
    body += _anomaly_line(x_of, top, plot_height, verdict, shade=False)   # a shade would change the cells' colours
    for finding, is_anomaly in marks(verdict):
        key = (finding.get("layer"), finding.get("blob"))
        shown_here = which == heatmap_of(finding) or (which == "dead" and finding.get("kind") == "dead")
        if shown_here and key in keys and isinstance(finding.get("iteration"), int):
            x, y = x0 + finding["iteration"] // width * cell_width, top + keys.index(key) * row
            frame = f'x="{x:.1f}" y="{y}" width="{cell_width:.1f}" height="{row}" fill="none"'
            body.append(f'<g class="anomaly"><rect {frame} stroke="#000" stroke-width="4.5"/>'
                        f'<rect {frame} stroke="#fff" stroke-width="1.5"/></g>' if is_anomaly else
                        f'<rect class="warning" {frame} stroke="#000" stroke-width="1.3" stroke-dasharray="3,2"/>')
    body += _colour_bar(x0 + plot_width + 14, top, min(plot_height, 400), low, high, cells.log, colour_label, prefix)
    body += _legend(total_width, cells.log, prefix)
    return _svg(total_width, axis_y + bottom, body, f"heatmap {which}")


def _colour_bar(x: float, top: float, height: float, low: float, high: float, log: bool, label: str,
                prefix: str) -> list:
    height = max(height, 60)
    out = [f'<rect x="{x}" y="{top}" width="14" height="{height}" fill="url(#{prefix}-scale)" stroke="#999"/>']
    for value in ticks(low, high, 5):
        if low <= value <= high:
            y = top + height - (value - low) / (high - low) * height
            out.append(f'<line x1="{x + 14}" x2="{x + 18}" y1="{y:.1f}" y2="{y:.1f}" stroke="#555"/>'
                       f'<text x="{x + 20}" y="{y + 4:.1f}" font-size="10">'
                       f'{number(value) if log else f"{value:.0%}"}</text>')
    out.append(f'<text transform="translate({x + 66},{top + height / 2}) rotate(90)" text-anchor="middle" '
               f'font-size="10">{text(label)}</text>')
    return out


def _legend(total_width: float, log: bool, prefix: str) -> list:
    entries = [("not printed", 'fill="#fff" stroke="#bbb"'), ("anomaly", 'fill="none" stroke="#000" stroke-width="3"'),
               ("warning", 'fill="none" stroke="#000" stroke-dasharray="3,2"')]
    if log:   # shares of zeros are never NaN, Inf, or left out of the scale
        entries[:0] = [("NaN", f'fill="{SPECIAL[NAN]}"', "nan"), ("Inf", f'fill="{SPECIAL[INF]}"', "inf"),
                       ("exactly 0", f'fill="{SPECIAL[ZERO]}"')]
    out, x = [], total_width - 8
    for entry in reversed(entries):
        name, style = entry[0], entry[1]
        x -= len(name) * 6 + 30
        out.append(f'<rect x="{x}" y="8" width="16" height="12" {style}/>')
        if len(entry) > 2:
            out.append(f'<rect x="{x}" y="8" width="16" height="12" fill="url(#{prefix}-{entry[2]})"/>')
        out.append(f'<text x="{x + 20}" y="18" font-size="10">{name}</text>')
    return out
