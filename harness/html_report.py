"""report.html: the run directory drawn — verdict, curves, per-layer heatmaps, the text report — in one file.

Everything comes from the run directory (verdict.json, records.jsonl, nets.json, run.json, report.md), so
a live run and a parsed log are drawn alike. records.jsonl is streamed once into small aggregates
(`collect`); the figures are drawn from those (`render_*`). Heatmaps cover the train net, pass 0, and have
at most MAX_COLUMNS columns: a longer run is binned, several iterations to a column.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import markdown

from .errors import HarnessError
from .netinfo import RECTIFIER_TYPES, NetInfo, from_dict
from .records import BACKWARD, FORWARD, TRAIN, BlobStat, IterationEnd, ParamNorms, TestResult, read_records

MAX_COLUMNS = 400
# Cell categories of a heatmap, in the order a column shows them when its iterations disagree.
MISSING, ZERO, FINITE, INF, NAN = range(5)
STATUS_COLOURS = {"ok": "#2e7d32", "halted": "#c62828", "error": "#6a1b1b", "interrupted": "#616161"}


# ---------------------------------------------------------------- reading the run directory

def load_verdict(run_dir: Path) -> dict:
    path = run_dir / "verdict.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist: is {run_dir} a run directory of `harness train` or "
                           "`harness parse`?") from None
    except ValueError as error:
        raise HarnessError(f"{path} is not valid JSON ({error})") from None


def load_train_net(run_dir: Path) -> Optional[NetInfo]:
    """The train net from nets.json; None for a parsed log without a net echo."""
    path = run_dir / "nets.json"
    if not path.exists():
        return None
    try:
        nets = json.loads(path.read_text(encoding="utf-8"))
        return from_dict(nets[TRAIN]) if TRAIN in nets else None
    except (ValueError, KeyError, TypeError):
        return None   # a damaged nets.json costs only the layer order and types, not the report


def iter_records(run_dir: Path) -> Iterator:
    path = run_dir / "records.jsonl"
    if not path.exists():
        return
    with open(path, encoding="utf-8") as stream:
        yield from read_records(stream)


def rectifier_layers(net: Optional[NetInfo]) -> set:
    return {layer.name for layer in net.layers if layer.type in RECTIFIER_TYPES} if net is not None else set()


# ---------------------------------------------------------------- collect: records -> aggregates

@dataclass
class Cells:
    """One heatmap being filled: rows keyed (layer, blob), columns of `width` iterations each.

    A cell keeps counts per category and the sum of its finite values (log10 of them when `log`), so a
    column that spans many iterations shows their mean (the geometric mean of mean |x| when `log`), and
    NaN or Inf if any of its iterations was.
    """
    width: int
    log: bool = True
    rows: dict = field(default_factory=dict)   # (layer, blob) -> {column: [value_sum, finite, zero, inf, nan]}

    def add(self, key: tuple, iteration: int, value: float) -> None:
        cell = self.rows.setdefault(key, {}).setdefault(iteration // self.width, [0.0, 0, 0, 0, 0])
        if math.isnan(value):
            cell[4] += 1
        elif math.isinf(value):
            cell[3] += 1
        elif self.log and value == 0:
            cell[2] += 1
        else:
            cell[0] += math.log10(abs(value)) if self.log else value
            cell[1] += 1

    def columns(self) -> int:
        return 1 + max((column for row in self.rows.values() for column in row), default=-1)

    def matrix(self, keys: list, columns: int):
        """(values, categories) arrays of shape (len(keys), columns); values are NaN outside FINITE cells."""
        import numpy as np
        values = np.full((len(keys), columns), np.nan)
        categories = np.full((len(keys), columns), MISSING, dtype=int)
        for r, key in enumerate(keys):
            for column, (total, finite, zero, inf, nan) in self.rows.get(key, {}).items():
                if nan:
                    categories[r, column] = NAN
                elif inf:
                    categories[r, column] = INF
                elif finite:
                    categories[r, column] = FINITE
                    values[r, column] = total / finite
                elif zero:
                    categories[r, column] = ZERO
        return values, categories


@dataclass
class Series:
    steps: list = field(default_factory=list)
    values: list = field(default_factory=list)

    def add(self, step: int, value) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.steps.append(step)
            self.values.append(float(value))


@dataclass
class RunData:
    width: int
    forward: Cells
    backward: Cells
    dead: Cells
    train: dict = field(default_factory=dict)   # "loss", "smoothed loss", train outputs -> Series
    test: dict = field(default_factory=dict)    # "test0 accuracy" ... -> Series
    lr: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    layer_order: list = field(default_factory=list)   # first-seen, for runs without nets.json
    last_iteration: int = -1
    passes: int = 1

    def rows(self, cells: Cells, net: Optional[NetInfo]) -> list:
        """Row keys in net order: nets.json's layer order, else the order layers first appeared."""
        order = [layer.name for layer in net.layers] if net is not None else []
        rank = {name: i for i, name in enumerate(order)}
        for name in self.layer_order:
            rank.setdefault(name, len(rank))
        first_seen = {key: i for i, key in enumerate(cells.rows)}
        return sorted(cells.rows, key=lambda key: (rank.get(key[0], len(rank)), first_seen[key]))


def column_width(iterations: int) -> int:
    return max(1, math.ceil((iterations + 1) / MAX_COLUMNS))


def collect(records: Iterable, iterations: int, rectifiers: set = frozenset()) -> RunData:
    """One pass over the records. `iterations` (verdict's iterations_run) sets the column width."""
    width = column_width(iterations)
    data = RunData(width, Cells(width), Cells(width), Cells(width, log=False))
    seen_layers: dict = {}
    for record in records:
        if isinstance(record, BlobStat):
            if record.net != TRAIN:
                continue
            data.passes = max(data.passes, record.pass_index + 1)
            if record.pass_index != 0:
                continue
            seen_layers.setdefault(record.layer, None)
            key = (record.layer, record.blob)
            data.last_iteration = max(data.last_iteration, record.iteration)
            (data.forward if record.phase == FORWARD else data.backward).add(key, record.iteration, record.mean_abs)
            if (record.phase == FORWARD and record.kind == "top" and record.layer in rectifiers
                    and record.zero_fraction is not None):
                data.dead.add(key, record.iteration, record.zero_fraction)
        elif isinstance(record, IterationEnd):
            data.last_iteration = max(data.last_iteration, record.iteration)
            data.train.setdefault("loss", Series()).add(record.iteration, record.loss)
            if record.smoothed_loss is not None and record.smoothed_loss != record.loss:
                data.train.setdefault("smoothed loss", Series()).add(record.iteration, record.smoothed_loss)
            for name, value in record.outputs.items():
                if name != "loss":
                    data.train.setdefault(name, Series()).add(record.iteration, value)
            data.lr.add(record.iteration, record.lr)
        elif isinstance(record, ParamNorms) and record.net == TRAIN:
            # With iter_size > 1 the last pass holds the accumulated gradient: it overwrites the earlier ones.
            if data.grad_norm.steps and data.grad_norm.steps[-1] == record.iteration:
                data.grad_norm.steps.pop()
                data.grad_norm.values.pop()
            data.grad_norm.add(record.iteration, record.l2_diff)
        elif isinstance(record, TestResult):
            data.last_iteration = max(data.last_iteration, record.iteration)
            for name, value in record.outputs.items():
                data.test.setdefault(f"{record.net} {name}", Series()).add(record.iteration, value)
    data.layer_order = list(seen_layers)
    return data


def marks(verdict: dict) -> list:
    """The findings to draw: (finding, is_anomaly), the anomaly first."""
    anomaly = verdict.get("anomaly")
    out = [(anomaly, True)] if isinstance(anomaly, dict) else []
    return out + [(w, False) for w in verdict.get("warnings") or [] if isinstance(w, dict)]


def heatmap_of(finding: dict) -> Optional[str]:
    """Which heatmap holds a finding's cell: forward, backward or None (other nets, net-wide norms)."""
    if finding.get("net", TRAIN) != TRAIN or finding.get("layer") == "All net params":
        return None
    return BACKWARD if finding.get("phase") == BACKWARD else FORWARD   # "update" shows in the next forward


# ---------------------------------------------------------------- render: aggregates -> PNG

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


# ---------------------------------------------------------------- the page

def _fmt(value) -> str:
    """Escaped text; `code` spans in the rules' messages and suggestions become <code>."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(value)))


def _verdict_card(verdict: dict) -> str:
    status = str(verdict.get("status", "?"))
    colour = STATUS_COLOURS.get(status, "#616161")
    anomaly = verdict.get("anomaly") if isinstance(verdict.get("anomaly"), dict) else None
    lines = [f'<div class="card" style="border-left-color:{colour}">',
             f'<span class="badge" style="background:{colour}">{html.escape(status.upper())}</span>']
    if anomaly is not None:
        evidence = anomaly.get("evidence") or {}
        lines.append(f'<h2>{_fmt(anomaly.get("kind"))} at iteration {_fmt(anomaly.get("iteration"))}</h2>')
        where = [("phase", anomaly.get("phase")), ("net", anomaly.get("net", TRAIN)), ("layer", anomaly.get("layer")),
                 ("blob", anomaly.get("blob")), ("value", anomaly.get("value")), ("cause", evidence.get("cause"))]
        lines.append('<dl class="where">' + "".join(f"<dt>{k}</dt><dd>{_fmt(v)}</dd>" for k, v in where
                                                    if v is not None) + "</dl>")
        lines.append(f'<p>{_fmt(anomaly.get("message", ""))}</p>')
        if anomaly.get("suggestions"):
            lines.append("<p><b>Changes to try</b></p><ol>" + "".join(
                f"<li>{_fmt(s)}</li>" for s in anomaly["suggestions"]) + "</ol>")
    elif status == "error":
        lines.append(f'<h2>Caffe failed after {_fmt(verdict.get("iterations_run"))} iterations</h2>'
                     f'<pre>{_fmt(verdict.get("caffe_error") or "")}</pre>')
    else:
        lines.append(f'<h2>{_fmt(verdict.get("iterations_run"))} iterations, no anomaly</h2>')
    warnings = verdict.get("warnings") or []
    if warnings:
        lines.append(f"<p><b>{len(warnings)} warning(s):</b> " + "; ".join(
            f'{_fmt(w.get("kind"))} in {_fmt(w.get("layer"))} at iteration {_fmt(w.get("iteration"))}'
            for w in warnings[:8]) + ("; …" if len(warnings) > 8 else "") + "</p>")
    lines.append("</div>")
    return "\n".join(lines)


def _crosscheck_card(verdict: dict) -> str:
    check = verdict.get("crosscheck") or {}
    if verdict.get("source") == "log":
        note = "A parsed log: the values are Caffe's own, so there is nothing to cross-check."
    elif check.get("mismatched"):
        note = "Some of Caffe's printed values disagree with the harness's: see the text report below."
    else:
        note = "Caffe's printed values agree with the harness's."
    cells = [("compared", check.get("compared", 0)), ("mismatched", check.get("mismatched", 0)),
             ("unmatched log lines", check.get("unmatched_log_lines", 0)),
             ("max relative error", check.get("max_rel_error", 0.0))]
    return ('<div class="card small"><h3>Cross-check of Caffe\'s log against the harness</h3><table class="kv">'
            + "".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in cells)
            + f"</table><p>{note}</p></div>")


def _figure(title: str, png: str, caption: str) -> str:
    return (f'<section><h2>{html.escape(title)}</h2><figure><img alt="{html.escape(title)}" '
            f'src="data:image/png;base64,{png}"><figcaption>{caption}</figcaption></figure></section>')


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d1d1f}
main{max-width:1240px;margin:0 auto;padding:24px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;color:#555;font-size:13px}
.top{display:grid;grid-template-columns:2fr 1fr;gap:16px;margin:16px 0}
.card{background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 3px #0002;border-left:6px solid #ccc}
.card h2{margin:8px 0;font-size:19px} .card h3{margin:0 0 8px;font-size:15px}
.card.small{border-left-color:#1565c0;font-size:13px}
.badge{color:#fff;font-weight:700;padding:3px 10px;border-radius:4px;font-size:13px;letter-spacing:.05em}
dl.where{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0;font-size:14px}
dl.where dt{color:#666} dl.where dd{margin:0;font-family:ui-monospace,monospace}
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left} th{background:#f0f2f5}
table.kv th{width:55%}
section{background:#fff;border-radius:8px;padding:12px 20px;margin:16px 0;box-shadow:0 1px 3px #0002}
section h2{font-size:17px;margin:6px 0 10px}
figure{margin:0} figure img{max-width:100%;display:block}
figcaption{color:#555;font-size:13px;margin-top:6px}
.text-report{overflow-x:auto} .text-report h1{font-size:18px}
.text-report h2{font-size:15px;border-bottom:1px solid #eee;padding-bottom:3px}
pre,code{background:#f3f3f3;border-radius:3px} pre{padding:8px;overflow-x:auto}
"""

HEATMAP_HELP = ("Rows: one per (layer, blob) as Caffe prints them, in net order, top to bottom; columns: "
                "iterations. Train net, first forward/backward pass of each iteration. White: not printed. "
                "The heavy black frame is the anomaly's cell, dashed frames are warnings; the dashed red line "
                "marks the anomaly's iteration.")


def _header(run_dir: Path, verdict: dict) -> str:
    run = {}
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass   # parsed logs have no run.json
    facts = [f"run directory {run_dir}", f"source: {verdict.get('source', 'live')}",
             f"iterations run: {verdict.get('iterations_run')}"]
    if run.get("solver"):
        facts.append(f"solver: {run['solver']}")
    if run.get("started"):
        facts.append(f"started {run['started']}")
    return f"<header><h1>caffe-harness report</h1><p>{html.escape(' · '.join(facts))}</p></header>"


def build_html(run_dir: Path) -> str:
    verdict = load_verdict(run_dir)
    net = load_train_net(run_dir)
    data = collect(iter_records(run_dir), int(verdict.get("iterations_run") or 0), rectifier_layers(net))
    parts = [_header(run_dir, verdict), '<div class="top">', _verdict_card(verdict), _crosscheck_card(verdict),
             "</div>"]
    curves = render_curves(data, verdict)
    if curves is not None:
        parts.append(_figure("Training curves", curves,
                             "Crosses on the top edge: NaN/Inf values. Dashed red line: the anomaly's iteration."))
    passes = f" With iter_size {data.passes}, only pass 0 is drawn." if data.passes > 1 else ""
    for cells, which, title, label in (
            (data.forward, FORWARD, "Forward: log10 mean |data| per blob", "log10 mean |data|"),
            (data.backward, BACKWARD, "Backward: log10 mean |diff| per blob", "log10 mean |diff|")):
        if cells.rows:
            keys = data.rows(cells, net)
            parts.append(_figure(title, render_heatmap(cells, keys, label, verdict, which, net=net),
                                 HEATMAP_HELP + passes))
    if data.dead.rows:
        title = "Dead fraction of rectifier outputs (share of exact zeros)"
        parts.append(_figure(title, render_heatmap(data.dead, data.rows(data.dead, net), "share of zeros",
                                                   verdict, "dead", cmap_name="YlOrRd", limits=(0.0, 1.0), net=net),
                             "Rows: the top blob of each rectifier (ReLU, PReLU, ELU). 100% means no gradient "
                             "passes that layer."))
    elif verdict.get("source") == "log":
        parts.append("<section><h2>Dead fraction</h2><p>Not available for a parsed log: Caffe does not print "
                     "the share of zeros.</p></section>")
    report_md = run_dir / "report.md"
    if report_md.exists():
        body = markdown.markdown(report_md.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"])
        parts.append(f'<section class="text-report"><h2>Text report (report.md)</h2>{body}</section>')
    title = f"caffe-harness: {verdict.get('status', '?')} — {run_dir.name}"
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n")


def write(run_dir: Path) -> Path:
    """Write run_dir/report.html from the files in the run directory; returns its path."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    path.write_text(build_html(run_dir), encoding="utf-8")
    return path
