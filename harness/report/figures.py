"""The pictures of report.html, drawn from collect's aggregates as base64 PNG: training curves and
per-layer heatmaps with the anomaly and warnings marked. matplotlib is imported only here.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Iterator, Optional

from ..core.netinfo import NetInfo
from .collect import FINITE, INF, MISSING, NAN, ZERO, Cells, RunData, Series, heatmap_of, marks

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.titleweight": "bold", "axes.titlesize": 10})
    return plt


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _anomaly_lines(axis, verdict: dict, shade: bool = True) -> None:
    anomaly = verdict.get("anomaly")
    if not isinstance(anomaly, dict) or not isinstance(anomaly.get("iteration"), int):
        return
    start = anomaly["iteration"]
    confirmed = (anomaly.get("evidence") or {}).get("confirmed_at")
    if shade and isinstance(confirmed, int) and confirmed > start:   # a streak: from its first iteration on
        axis.axvspan(start, confirmed, color="#c62828", alpha=0.08, lw=0)
    axis.axvline(start, color="#c62828", lw=1.4, ls="--", zorder=5)


def _plot_series(axis, label: str, series: Series, **style) -> None:
    finite = [(s, v) for s, v in zip(series.steps, series.values) if math.isfinite(v)]
    bad = [s for s, v in zip(series.steps, series.values) if not math.isfinite(v)]
    if finite:
        steps, values = zip(*finite)
        axis.plot(steps, values, label=label, marker="o" if len(finite) <= 30 else None, ms=3, **style)
    if bad:
        # Non-finite points have no height: show them as crosses on the top edge.
        axis.plot(bad, [1.0] * len(bad), "x", color="#c62828", ms=7, mew=2, clip_on=False,
                  transform=axis.get_xaxis_transform(), label=f"{label}: NaN/Inf")


def _scale(axis, series: list) -> None:
    values = [v for s in series for v in s.values if math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        axis.set_yscale("log")


def _panels(data: RunData) -> list:
    """(title, {label: Series}) for each curve panel that has something to show."""
    accuracy = {k: s for k, s in {**data.train, **data.test}.items() if "acc" in k.lower()}
    losses = {k: s for k, s in {**data.train, **data.test}.items() if k not in accuracy}
    panels = [("Loss (train and test)", losses), ("Accuracy", accuracy), ("Learning rate", {"lr": data.lr}),
              ("L2 norm of all parameter gradients", {"L2 norm (diff)": data.grad_norm})]
    return [(title, {k: s for k, s in group.items() if s.steps}) for title, group in panels
            if any(s.steps for s in group.values())]


def render_curves(data: RunData, verdict: dict) -> Optional[str]:
    from matplotlib.ticker import MaxNLocator
    panels = _panels(data)
    if not panels:
        return None
    plt = _pyplot()
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(12, 3.2 * rows), constrained_layout=True, squeeze=False)
    for axis, (title, group) in zip(axes.flat, panels):
        axis.set_title(title, loc="left")
        axis.grid(alpha=0.3)
        axis.set_xlabel("iteration")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        for i, (label, series) in enumerate(group.items()):
            _plot_series(axis, label, series, color=f"C{i}", lw=2.2 if "smoothed" in label else 1.4,
                         alpha=0.5 if label == "loss" and "smoothed loss" in group else 1.0)
        _scale(axis, list(group.values()))
        if axis.get_yscale() == "linear":
            axis.ticklabel_format(axis="y", useOffset=False)   # a flat loss reads 1.3862, not +1.386 and 0.0002
        if title == "Learning rate" and axis.get_yscale() == "linear":
            axis.set_ylim(bottom=0)   # a constant lr otherwise gets an axis of its rounding noise
        axis.legend(fontsize=8, frameon=False)
        axis.set_xlim(-0.5, max(data.last_iteration, 1) + 0.5)
        _anomaly_lines(axis, verdict)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    return _png(figure)


def _cell_colours(values, categories, norm, cmap):
    import numpy as np
    rgba = cmap(norm(np.nan_to_num(values, nan=norm.vmin)))
    special = {MISSING: "#ffffff", ZERO: "#c8c8c8", INF: "#ff9800", NAN: "#d50000"}
    from matplotlib.colors import to_rgba
    for category, colour in special.items():
        rgba[categories == category] = to_rgba(colour)
    return rgba


def _runs(mask_row) -> Iterator:
    """(start, length) of each run of True in a boolean row: one hatched patch per run, not per cell."""
    start = None
    for i, flag in enumerate(list(mask_row) + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            yield start, i - start
            start = None


def _box(axis, column: int, width: int, row: int, is_anomaly: bool) -> None:
    """The anomaly: a heavy black frame with a white core, visible on any cell colour; a warning: dashed."""
    from matplotlib.patches import Rectangle
    corner = (column * width - 0.5, row - 0.5)
    if is_anomaly:
        for colour, lw in (("black", 4.5), ("white", 1.5)):
            axis.add_patch(Rectangle(corner, width, 1, fill=False, edgecolor=colour, lw=lw, zorder=6, clip_on=False))
    else:
        axis.add_patch(Rectangle(corner, width, 1, fill=False, edgecolor="black", lw=1.3, ls=(0, (3, 2)), zorder=6))


def render_heatmap(cells: Cells, keys: list, colour_label: str, verdict: dict, which: str,
                   cmap_name: str = "viridis", limits: Optional[tuple] = None,
                   net: Optional[NetInfo] = None) -> str:
    import numpy as np
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator
    plt = _pyplot()
    columns = cells.columns()
    values, categories = cells.matrix(keys, columns)
    finite = values[np.isfinite(values)]
    low, high = limits or ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1)
    cmap = plt.get_cmap(cmap_name)
    width = cells.width
    figure, axis = plt.subplots(figsize=(12, max(2.2, 0.24 * len(keys) + 1.3)), constrained_layout=True)
    extent = (-0.5, columns * width - 0.5, len(keys) - 0.5, -0.5)
    axis.imshow(_cell_colours(values, categories, norm, cmap), aspect="auto", interpolation="nearest",
                extent=extent)
    for category, hatch in ((NAN, "xxx"), (INF, "///")):
        for r in range(len(keys)):
            for start, length in _runs(categories[r] == category):
                axis.add_patch(Rectangle((start * width - 0.5, r - 0.5), length * width, 1, facecolor="none",
                                         edgecolor="white", hatch=hatch, lw=0))
    if columns <= 30 and len(keys) * columns <= 600:   # few cells: write their values in
        for r, c in zip(*np.nonzero(categories == FINITE)):
            shade = cmap(norm(values[r, c]))
            light = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] > 0.55
            axis.text(c * width + (width - 1) / 2, r, f"{values[r, c]:.2g}" if cells.log else f"{values[r, c]:.0%}",
                      ha="center", va="center", fontsize=7, color="black" if light else "white")
    types = {layer.name: layer.type for layer in net.layers} if net is not None else {}
    axis.set_yticks(range(len(keys)))
    axis.set_yticklabels([f"{layer} ({types[layer]}) · {blob}" if layer in types else f"{layer} · {blob}"
                          for layer, blob in keys], fontsize=7.5)
    for r in range(1, len(keys)):   # a white rule between layers groups a layer's blobs
        if keys[r][0] != keys[r - 1][0]:
            axis.axhline(r - 0.5, color="white", lw=2)
    binned = f" (each column: {width} iterations, their mean{'; NaN/Inf if any was' if cells.log else ''})"
    axis.set_xlabel("iteration" + (binned if width > 1 else ""))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlim(extent[0], extent[1])
    axis.spines[["left", "bottom"]].set_visible(False)
    _anomaly_lines(axis, verdict, shade=False)   # a shade would change the cells' colours
    for finding, is_anomaly in marks(verdict):
        key = (finding.get("layer"), finding.get("blob"))
        shown_here = which == heatmap_of(finding) or (which == "dead" and finding.get("kind") == "dead")
        if shown_here and key in keys and isinstance(finding.get("iteration"), int):
            _box(axis, finding["iteration"] // width, width, keys.index(key), is_anomaly)
    colourbar = figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axis, pad=0.01, fraction=0.03)
    colourbar.set_label(colour_label)
    legend = [Patch(facecolor="white", edgecolor="#bbb", label="not printed"),
              Patch(facecolor="none", edgecolor="black", lw=3, label="anomaly"),
              Patch(facecolor="none", edgecolor="black", ls="--", label="warning")]
    if cells.log:   # shares of zeros are never NaN, Inf, or left out of the scale
        legend[:0] = [Patch(facecolor="#d50000", hatch="xxx", edgecolor="white", label="NaN"),
                      Patch(facecolor="#ff9800", hatch="///", edgecolor="white", label="Inf"),
                      Patch(facecolor="#c8c8c8", label="exactly 0")]
    axis.legend(handles=legend, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(legend), fontsize=8,
                frameon=False, borderaxespad=0.2)
    return _png(figure)
