"""report.html: the run directory drawn — verdict, curves, per-layer heatmaps, the text report — in one file.

Everything comes from the run directory (verdict.json, the records store, nets.json, run.json, report.md), so
a live run and a parsed log are drawn alike: `collect` reads it, `figures` draws, this module lays it out.
"""
from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

import markdown

from ..core.records import BACKWARD, FORWARD, TRAIN
from .collect import collect, iter_records, load_train_net, load_verdict, rectifier_layers
from .figures import render_curves, render_heatmap

STATUS_COLOURS = {"ok": "#2e7d32", "halted": "#c62828", "error": "#6a1b1b", "interrupted": "#616161"}

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


def _figure(title: str, svg: str, caption: str) -> str:
    """A section that can be folded away; `content-visibility` lets the browser skip drawing it off screen."""
    return (f'<section><details open><summary><h2>{html.escape(title)}</h2></summary><figure>{svg}'
            f'<figcaption>{caption}</figcaption></figure></details></section>')


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
figure{margin:0} figure svg{max-width:100%;height:auto;display:block}
summary{cursor:pointer} summary h2{display:inline}
section{content-visibility:auto;contain-intrinsic-size:auto 600px}
.panels{display:grid;grid-template-columns:1fr 1fr;gap:8px}
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


def write_or_warn(run_dir: Path, quiet: bool) -> None:
    """report.html beside report.md. It is written last: a failure here cannot cost the verdict or report.md,
    so it is reported as a warning, not as the run's error."""
    try:
        path = write(run_dir)
    except Exception as error:   # noqa: BLE001 - any drawing failure must leave the run's outcome intact
        print(f"warning: report.html could not be drawn ({type(error).__name__}: {error}); "
              f"verdict.json and report.md are complete.", file=sys.stderr)
        return
    if not quiet:
        print(f"report: {path}", file=sys.stderr)
