"""Which Caffe ran and how the harness watched it, for the verdict; and what that costs the anomaly's precision.

run.json holds the build as the command found it (path, version, git describe); caffe.json what the worker
found once it had loaded it (libcaffe, pycaffe's version, the hooks mode and what that mode cannot see).
Without per-layer hooks a halting non-finite value is qualified: the harness knows the iteration, and the layer
only as the first whose blob still held the value after the pass. Caffe's own debug lines were printed
layer by layer as it ran, so caffe.log still names where the first non-finite value was printed.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Optional

from ..core.records import BlobStat
from ..log import glog
from ..rules.findings import HALT
from .stepping import LAYERS, SOLVER


def read(run_dir: Path) -> Optional[dict]:
    """The verdict's `caffe` entry: path, version, git describe, libcaffe, hooks mode and what it loses."""
    run_path, worker_path = Path(run_dir, "run.json"), Path(run_dir, "caffe.json")
    recorded = json.loads(run_path.read_text()).get("caffe_build", {}) if run_path.is_file() else {}
    loaded = json.loads(worker_path.read_text()) if worker_path.is_file() else {}
    if not recorded and not loaded:
        return None
    return {"path": recorded.get("path") or recorded.get("prefix"),
            "version": loaded.get("version") or recorded.get("version"),
            "git_describe": recorded.get("git_describe"), "libcaffe": loaded.get("libcaffe"),
            "hooks": loaded.get("hooks"), "lost": loaded.get("lost", [])}


def first_nonfinite_line(log: Path, net: str, iteration: int) -> Optional[BlobStat]:
    """The first debug line of `net` at `iteration` that Caffe printed as nan or inf."""
    if not log.is_file():
        return None
    for record in glog.parse_file(log):
        if (isinstance(record, BlobStat) and record.net == net and record.iteration == iteration
                and not math.isfinite(record.mean_abs)):
            return record
    return None


def qualify(findings: list, build: Optional[dict], log: Path) -> list:
    """The findings, with the halting one saying what the hooks mode lets it know."""
    mode = (build or {}).get("hooks")
    if mode in (None, LAYERS):
        return findings
    halting = next((f for f in findings if f.severity == HALT), None)
    if halting is None or halting.kind != "nonfinite":   # the other rules judge whole iterations anyway
        return findings
    when = "before the update" if mode == SOLVER else "after its update"
    note = (f" Precision lost: this Caffe build has no per-layer hooks (--hooks {mode}), so the harness read the "
            f"blobs back once iteration {halting.iteration}'s forward and backward passes had run ({when}): the "
            f"anomaly is in iteration {halting.iteration}, and {halting.layer} is the first layer whose blob still "
            "held it after the pass, not necessarily the layer that produced it.")
    evidence = {**halting.evidence, "precision": "iteration"}
    printed = first_nonfinite_line(log, halting.net, halting.iteration)
    if printed is not None:
        note += (f" Caffe's own debug lines, printed layer by layer, show the first non-finite value in "
                 f"{printed.phase}, layer {printed.layer}, "
                 f"{printed.blob if printed.kind == 'param' else f'{printed.kind} blob {printed.blob}'} (caffe.log).")
        evidence["caffe_log_first_nonfinite"] = {"phase": printed.phase, "layer": printed.layer,
                                                 "blob": printed.blob, "kind": printed.kind}
    qualified = replace(halting, message=halting.message + note, evidence=evidence)
    return [qualified if f is halting else f for f in findings]
