"""report.md and the terminal summary: formats the verdict and the records; decides nothing.

The records are streamed once; only the relevant layers' statistics of the last N iterations up to the
finding are kept (the culprit layer, the layers feeding it, the layer its finding says cuts the
gradient), with lr, loss and the L2 norm of all param diffs.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Optional

from ..core.netinfo import NetInfo, SolverInfo
from ..core.records import BACKWARD, FORWARD, BlobStat, IterationEnd, ParamNorms
from ..core.store import iter_run_records
from ..rules import structure

MAX_MISMATCHES = 20
CAUSES = {
    "bad_input": "bad input data: the data itself holds NaN/Inf",
    "python_layer": "a bug in a Python layer: it computes non-finite values from finite inputs",
    "loss_layer": "the loss overflowed (unscaled targets, a large loss_weight or a too large step)",
    "math_domain": "a math layer (Log, Power) fed values outside its domain",
    "initialisation": "initial weights too large: activations overflow before any update",
    "exploding": "exploding activations or gradients (learning rate too high, no clipping)",
    "corrupted_weights": "the weights became non-finite in an update (or were loaded that way)",
    "overflow": "values so large that Caffe's float sums overflow: explosion under way",
    "dead_at_init": "a rectifier dead from the start (initialisation or bias filler)",
    "died_in_training": "a rectifier that died during training (usually too large a step)",
    "not_connected": "a learnable parameter not connected to any loss",
    "propagate_down": "a gradient blocked by `propagate_down: false`",
    "starved": "a gradient cut by a layer above (e.g. a dead rectifier)",
    "saturated": "a gradient cut by a saturated TanH/Sigmoid above: its input grew far out of range (step size, "
                 "data scale)",
    "python_backward": "a Python layer whose backward() passes no gradient",
    "zero_gradient": "a gradient that is exactly zero although the layer reaches a loss",
    "lr_mult_unknown": "a parameter without gradient whose lr_mult the log does not tell",
    "vanishing": "vanishing gradients",
    "empty_bn_stats": "a BatchNorm using stored statistics that are all zero (weights not loaded): x316 per BatchNorm",
    "weights_not_loaded": "weights given, but layer names of the file and the net do not match: those layers start from scratch",
    "saturated_softmax": "every true-class probability underflowed: the softmax loss is clamped at -log(FLT_MIN)",
    "stuck_at_chance": "a classification loss that never left chance level ln(K): nothing is learnt",
    "collapse_to_chance": "a classification loss that fell back to chance level ln(K) after learning",
    "loss_head": "one loss head out of scale with the others (targets or loss_weight)",
    "intermittent_nan": "one non-finite iteration poisons Caffe's running-mean display loss",
    "hidden_nan_output": "a non-finite output that does not count in the loss, hidden by the display",
    "no_learning_signal": "zero loss and zero gradients everywhere (labels all ignored or empty)",
    "lr_out_of_range": "a learning rate outside any sane range (schedule or base_lr mistyped)",
    "nonfinite_at_start": "non-finite before any update: the input data or the initial weights, not the step size",
    "layer_backward": "a layer's Backward computes NaN/Inf from finite diffs before any update (a bug of the layer)",
    "unknown": "a non-finite value whose cause the log cannot tell (no net definition)",
    "dead_path": "a path of layers whose outputs are all exactly 0: nothing passes forward, no gradient back",
    "test_at_chance": "the test net at chance while the train net learns: the two pipelines differ",
}


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def _cell(stat: BlobStat) -> str:
    notes = []
    if stat.nonfinite:
        notes.append(f"{stat.nonfinite} NaN/Inf")
    if stat.overflow:
        notes.append("sum overflowed")
    if stat.zero_fraction is not None and stat.zero_fraction > 0:
        notes.append(f"{stat.zero_fraction:.0%} zeros")
    return _fmt(stat.mean_abs) + (f" ({', '.join(notes)})" if notes else "")


class _Window:
    """The last `size` iterations (up to `end`) of the chosen statistics, filled from a record stream."""

    def __init__(self, focus: Optional[dict], net: Optional[NetInfo], size: int):
        self.size = size
        self.net_name = focus.get("net", "train") if focus else "train"
        evidence = focus.get("evidence", {}) if focus else {}
        self.end = evidence.get("confirmed_at", focus["iteration"]) if focus else None
        self.wanted = _wanted(focus, net) if focus else {}
        self.rows: OrderedDict = OrderedDict()   # iteration -> {column: text}
        self.columns: list = []
        self.passes = 1
        self.first: Optional[IterationEnd] = None
        self.last: Optional[IterationEnd] = None

    def _row(self, iteration: int) -> Optional[dict]:
        if self.end is not None and iteration > self.end:
            return None
        if iteration not in self.rows:
            self.rows[iteration] = {}
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)
        return self.rows.get(iteration)

    def add(self, record) -> None:
        if isinstance(record, IterationEnd):
            row = self._row(record.iteration)
            if row is not None:
                row.update({"lr": _fmt(record.lr), "loss": _fmt(record.loss),
                            "displayed loss": _fmt(record.smoothed_loss)})
                self.first = self.first or record
                self.last = record
        elif isinstance(record, ParamNorms) and record.net == "train":
            row = self._row(record.iteration)
            if row is not None:
                row["L2 of all param diffs"] = _fmt(record.l2_diff)
        elif isinstance(record, BlobStat) and self.wants(record.net, record.phase, record.layer, record.blob):
            row = self._row(record.iteration)
            if row is not None:
                column = f"{record.layer}: {record.blob} {'data' if record.phase == FORWARD else 'diff'}"
                if column not in self.columns:
                    self.columns.append(column)
                row[column] = _cell(record)
                self.passes = max(self.passes, record.pass_index + 1)

    def wants(self, net: str, phase: str, layer: str, blob: str, *_) -> bool:
        """Whether the table shows this blob's statistics (the records store skips the others unread)."""
        blobs = self.wanted.get((phase, layer))
        return net == self.net_name and blobs is not None and (not blobs or blob in blobs)

    def table(self) -> str:
        columns = ["lr", "loss", "displayed loss", "L2 of all param diffs"] + self.columns
        columns = [c for c in columns if any(row.get(c) for row in self.rows.values())]
        if not self.rows or not columns:
            return "_No statistics were recorded for these layers._"
        lines = ["| iteration | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for iteration, row in self.rows.items():
            lines.append(f"| {iteration} | " + " | ".join(row.get(c, "") for c in columns) + " |")
        note = (f"\n\nWith iter_size {self.passes}, each row shows the last pass (diffs accumulate over passes)."
                if self.passes > 1 else "")
        return "mean |x| per blob (data in forward, diff in backward)\n\n" + "\n".join(lines) + note


def _wanted(focus: dict, net: Optional[NetInfo]) -> dict:
    """(phase, layer) -> blob names to keep (empty set: all of that layer's blobs)."""
    layer = focus["layer"]
    phase = BACKWARD if focus["phase"] == BACKWARD else FORWARD
    wanted = {(phase, layer): set()}
    info = net.layer(layer) if net is not None else None
    if info is not None:
        for feeding in structure.feeders(net, layer):
            inputs = {blob for blob in info.bottoms if blob in feeding.tops}
            params = {feeding.param_display(k) for k in range(len(feeding.lr_mults))}
            wanted[(FORWARD, feeding.name)] = inputs | params
    cut_by = focus.get("evidence", {}).get("cut_by")
    if cut_by:
        wanted[(FORWARD, cut_by)] = set()
        wanted[(BACKWARD, cut_by)] = set()
    return wanted


def _trend(window: _Window) -> str:
    first, last = window.first, window.last
    if first is None:
        return "_No iteration records._"
    lines = []
    if first.loss is not None or last.loss is not None:
        lines.append(f"- loss: {_fmt(first.loss)} at iteration {first.iteration} -> {_fmt(last.loss)} at "
                     f"iteration {last.iteration}")
    if first.lr is not None:
        change = "throughout" if first.lr == last.lr else f"-> {_fmt(last.lr)} at iteration {last.iteration}"
        lines.append(f"- lr: {_fmt(first.lr)} at iteration {first.iteration} {change}")
    return "\n".join(lines) or "_No loss or lr recorded._"


def _span(finding: dict) -> str:
    """Where the log shows only some iterations: the range the condition began in."""
    span = finding.get("iteration_range")
    if not span:
        return ""
    return f" (began in iterations {span[0]}-{span[1]}: the log shows no iteration between)"


def _headline(verdict: dict) -> str:
    status, anomaly = verdict["status"], verdict.get("anomaly")
    if anomaly is not None:
        output = f", output `{anomaly['output']}`" if anomaly.get("output") else ""
        return (f"{status.upper()}: {anomaly['kind']} at iteration {anomaly['iteration']}{_span(anomaly)}, "
                f"{anomaly['phase']}, net {anomaly.get('net', 'train')}, layer {anomaly['layer']}, blob "
                f"`{anomaly['blob']}`{output} = {_fmt(anomaly['value'])}")
    if status == "error":
        return f"ERROR after {verdict['iterations_run']} iterations: {verdict.get('caffe_error') or 'Caffe failed'}"
    warnings = verdict.get("warnings") or []
    if warnings:   # not "no anomaly": a warning may be the whole story of a log (a loss stuck at chance)
        first = warnings[0]
        return (f"{status.upper()}: {verdict['iterations_run']} iterations, nothing that halts, but "
                f"{len(warnings)} warning(s); first: {first['kind']} at iteration {first['iteration']}"
                f"{_span(first)}, layer {first['layer']}, blob `{first['blob']}`")
    return f"{status.upper()}: {verdict['iterations_run']} iterations, no anomaly"


def _crosscheck(verdict: dict) -> str:
    check = verdict.get("crosscheck") or {}
    text = (f"compared {check.get('compared', 0)} log lines, {check.get('mismatched', 0)} mismatched, "
            f"{check.get('unmatched_log_lines', 0)} log lines unmatched, max relative error "
            f"{_fmt(check.get('max_rel_error'))}")
    display = check.get("display")
    if display:   # a live run: which iterations Caffe printed its debug lines for
        text += (f"; Caffe's debug lines of {check.get('iterations_compared', 0)} iterations checked ("
                 + ("every iteration" if display == 1 else f"every {display} iterations, sampled; "
                    "`--crosscheck every` checks them all") + ")")
    return text


def _mismatch(mismatch) -> str:
    if isinstance(mismatch, dict):
        return "- " + ", ".join(f"{k}: {_fmt(v)}" for k, v in mismatch.items())
    return f"- {mismatch}"


def _entry(finding: dict) -> str:
    where = (f"iteration {finding['iteration']}, {finding['phase']}, layer {finding['layer']}, "
             f"blob `{finding['blob']}`")
    return f"- **{finding['kind']}** ({where}): {finding['message']}"


def _side_by_side(table: dict) -> str:
    """Two lists a finding compares row by row (e.g. weights_not_loaded's unmatched layer names)."""
    lines = ["| " + " | ".join(table["columns"]) + " |", "|---" * len(table["columns"]) + "|"]
    lines += ["| " + " | ".join(f"`{cell}`" if cell else "" for cell in row) + " |" for row in table["rows"]]
    return "\n".join(lines)


def _sections(verdict: dict, window: _Window, solver: Optional[SolverInfo]) -> list:
    anomaly = verdict.get("anomaly")
    focus = anomaly or (verdict["warnings"][0] if verdict["warnings"] else None)
    out = ["# caffe-harness report", f"**{_headline(verdict)}**",
           f"Iterations run: {verdict['iterations_run']}" + (f" (source: {verdict['source']})" if "source" in verdict else "")
           + (f"; solver: {solver.solver_path}" if solver is not None and solver.solver_path else "")]
    if verdict.get("caffe_error"):
        out += ["## Caffe error", "```\n" + verdict["caffe_error"] + "\n```"]
    if focus is not None:
        title = "What happened" if anomaly else "First warning"
        evidence = focus.get("evidence", {})
        out += [f"## {title}", "\n".join([
                    f"- kind: {focus['kind']} (rule {focus.get('rule', focus['kind'])}, "
                    f"policy {focus.get('severity', '')})",
                    f"- where: iteration {focus['iteration']}, phase {focus['phase']}, "
                    f"net {focus.get('net', 'train')}, layer {focus['layer']}, blob `{focus['blob']}`",
                    f"- value: {_fmt(focus['value'])}"]), focus["message"]]
        if evidence.get("side_by_side"):
            out += [_side_by_side(evidence["side_by_side"])]
        cause = evidence.get("cause")
        if cause:
            out += ["## Cause", f"`{cause}`: {CAUSES.get(cause, cause)}"]
        if focus.get("suggestions"):
            out += ["## Changes to try"] + ["\n".join(f"{i}. {s}" for i, s in enumerate(focus["suggestions"], 1))]
        out += [f"## Last {window.size} iterations of the relevant layers", window.table()]
        if focus.get("thresholds"):
            out += ["Thresholds in force: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in focus["thresholds"].items())]
    out += ["## Learning rate and loss", _trend(window)]
    others = [w for w in verdict["warnings"] if w is not focus]
    out += ["## Warnings", "\n".join(_entry(w) for w in others) if others else "None."]
    if verdict.get("source") == "log":
        out += ["## What the log alone cannot tell", _limits(verdict)]
        return out
    out += ["## Cross-check of Caffe's log against the harness", _crosscheck(verdict)]
    build = verdict.get("caffe")
    if build and build.get("lost"):
        out += ["Caffe printed lines the harness could not read (see below): they stay unmatched.",
                "## What this Caffe build lets the harness see",
                f"Caffe {build.get('version') or '(version unknown)'} from {build.get('path')}"
                + (f" (git {build['git_describe']})" if build.get("git_describe") else "")
                + f", observed with `--hooks {build.get('hooks')}`. Lost:",
                "\n".join(f"- {item}" for item in build["lost"])]
    mismatches = (verdict.get("crosscheck") or {}).get("mismatches") or []
    if mismatches:
        shown = [_mismatch(m) for m in mismatches[:MAX_MISMATCHES]]
        if len(mismatches) > MAX_MISMATCHES:
            shown.append(f"- ... and {len(mismatches) - MAX_MISMATCHES} more")
        out += ["\n".join(shown)]
    return out


def _understood(lines: dict) -> str:
    text = (f"Read {lines['lines']} lines: {lines['caffe_lines']} of Caffe's messages, {lines['other_log_lines']} "
            f"other log lines (glog prefix, echoed prototxt), {lines['blank_or_markup']} blank or markup, "
            f"{lines['not_recognised']} not recognised ({lines['not_recognised_with_numbers']} of them holding a "
            f"number)" + (f"; {lines['numbers_not_read']} of Caffe's lines had a number that does not parse (cut "
                          f"off?)" if lines.get("numbers_not_read") else "") + ".")
    if lines.get("wrap_width"):
        text += (f" The paste was wrapped at {lines['wrap_width']} columns: {lines['rows_joined']} rows were joined "
                 f"to the lines they continue.")
    if lines.get("samples"):
        text += " Not read:\n\n" + "\n".join(f"    {sample}" for sample in lines["samples"])
    return text


def _limits(verdict: dict) -> str:
    limits = verdict.get("limits") or []
    items = "\n".join(f"- {limit}" for limit in limits) if limits else "Nothing: the log has what the rules need."
    lines = verdict.get("log_lines")
    return items + ("\n\n" + _understood(lines) if lines else "")


def write(run_dir: Path, verdict: dict, records: Optional[Iterable], nets: dict, solver: Optional[SolverInfo],
          last_iters: int = 10) -> Path:
    """report.md from `records`; None: from the run directory's records store, reading only the rows the
    table shows (none at all for a run without findings)."""
    focus = verdict.get("anomaly") or (verdict["warnings"][0] if verdict["warnings"] else None)
    window = _Window(focus, nets.get(focus.get("net", "train") if focus else "train"), last_iters)
    for record in records if records is not None else iter_run_records(run_dir, blobs=window.wants):
        window.add(record)
    path = Path(run_dir) / "report.md"
    path.write_text("\n\n".join(_sections(verdict, window, solver)) + "\n", encoding="utf-8")
    return path


def terminal_summary(verdict: dict) -> str:
    lines = [_headline(verdict)]
    anomaly = verdict.get("anomaly")
    if anomaly is not None:
        lines.append(f"  {anomaly['message']}")
        lines += [f"  try: {s}" for s in anomaly.get("suggestions", [])[:3]]
    warnings = verdict["warnings"]
    if warnings:
        lines.append(f"  {len(warnings)} warning(s): " + "; ".join(
            f"{w['kind']} in {w['layer']} at iteration {w['iteration']}" for w in warnings[:3])
            + ("; ..." if len(warnings) > 3 else ""))
    if verdict.get("source") == "log":
        lines += [f"  the log alone cannot tell: {limit}" for limit in verdict.get("limits") or []]
        understood = verdict.get("log_lines")
        if understood and understood["not_recognised"]:
            lines.append(f"  {understood['lines'] - understood['not_recognised']} of {understood['lines']} lines "
                         f"recognised, {understood['not_recognised']} not ({understood['not_recognised_with_numbers']} "
                         f"holding a number: see verdict.json `log_lines`)")
        return "\n".join(lines)
    lines.append(f"  cross-check: {_crosscheck(verdict)}")
    build = verdict.get("caffe")
    if build and build.get("lost"):
        lines.append(f"  caffe: {build.get('path')} has no per-layer hooks (--hooks {build.get('hooks')}): the "
                     f"harness read every iteration back once; what that loses is in report.md")
    return "\n".join(lines)
