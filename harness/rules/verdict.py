"""verdict.json: the machine-readable outcome of a run (contract: docs/verdict.md), and its exit code."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..core.records import _json_number
from .findings import HALT

EXIT_CODES = {"ok": 0, "halted": 1, "error": 2, "interrupted": 130}
_CROSSCHECK_DEFAULTS = {"compared": 0, "mismatched": 0, "unmatched_log_lines": 0, "max_rel_error": 0.0}


def build(status: str, iterations_run: int, findings: list, crosscheck: Optional[dict],
          caffe_error: Optional[str], **extra) -> dict:
    """The anomaly is the first finding with severity halt; every other finding is a warning.
    Extra keyword fields (e.g. source="log") are added after the contract's fields."""
    if status not in EXIT_CODES:
        raise ValueError(f"status must be one of {', '.join(EXIT_CODES)}, got {status!r}")
    halting = next((f for f in findings if f.severity == HALT), None)
    if status == "halted" and halting is None:
        raise ValueError("status 'halted' needs a finding with severity halt")
    verdict = {
        "status": status,
        "iterations_run": int(iterations_run),
        "anomaly": halting.as_verdict_entry() if halting is not None else None,
        "warnings": [f.as_verdict_entry() for f in findings if f is not halting],
        "crosscheck": {**_CROSSCHECK_DEFAULTS, **(crosscheck or {})},
        "caffe_error": caffe_error,
    }
    clash = set(extra) & set(verdict)
    if clash:
        raise ValueError(f"extra fields may not replace contract fields: {', '.join(sorted(clash))}")
    verdict.update(extra)
    return verdict


def exit_code(verdict: dict) -> int:
    """0 finished, 1 halted on an anomaly, 2 bad input or a Caffe error, 130 interrupted."""
    return EXIT_CODES[verdict["status"]]


def _jsonable(value):
    # JSON has no nan/inf: write them as strings, the way records.jsonl does.
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return _json_number(value)


def write(path, verdict: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_jsonable(verdict), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
