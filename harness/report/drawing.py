"""The few drawing tools report.html needs, without a plotting library: colour maps, a palette PNG written
with zlib (one pixel per heatmap cell, scaled up by the browser), axis ticks, and SVG text escaping.
A figure is inline SVG: a page opens at once and a 400-row heatmap costs kilobytes, not megabytes.
"""
from __future__ import annotations

import math
import struct
import zlib
from html import escape

# Nine evenly spaced samples of matplotlib's colour maps; colours between them are interpolated.
COLOUR_MAPS = {
    "viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"),
    "YlOrRd": ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8c3c", "#fc4d2a", "#e2191c", "#bb0026", "#800026"),
}
# matplotlib's default colour cycle, for the curves.
CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def rgb(colour: str) -> tuple:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def colour_at(cmap: str, t: float) -> tuple:
    """The colour map's (r, g, b) at t in [0, 1]."""
    anchors = COLOUR_MAPS[cmap]
    t = min(max(t, 0.0), 1.0) * (len(anchors) - 1)
    k = min(int(t), len(anchors) - 2)
    low, high = rgb(anchors[k]), rgb(anchors[k + 1])
    return tuple(round(a + (b - a) * (t - k)) for a, b in zip(low, high))


def hex_colour(colour: tuple) -> str:
    return "#%02x%02x%02x" % colour


def palette_png(indices, palette: list) -> bytes:
    """A PNG of colour type 3 (palette): `indices` a uint8 array (height, width), `palette` (r, g, b)s."""
    import numpy as np
    height, width = indices.shape
    raw = np.hstack([np.zeros((height, 1), np.uint8), indices.astype(np.uint8)]).tobytes()   # filter 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", bytes(channel for colour in palette for channel in colour))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def ticks(low: float, high: float, count: int = 6, integer: bool = False) -> list:
    """Round values (1, 2, 2.5 or 5 times a power of ten) between low and high, about `count` of them."""
    if not high > low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    first = math.ceil(low / step - 1e-9) * step
    return [first + k * step for k in range(int((high - first) / step + 1e-9) + 1)]


def number(value: float) -> str:
    """A tick label: 0.001, 1.3862, 2e+04; never -0."""
    text = f"{round(value, 12):.6g}"
    return "0" if text in ("-0", "0") else text


def text(value) -> str:
    return escape(str(value), quote=True)
