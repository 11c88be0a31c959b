#!/usr/bin/env python3
"""The zoo's verdicts on the GPU against the same nets' verdicts on the CPU, from two `harness check --keep`
folders (run directories by net name): a Markdown table, and exit 1 when any verdict differs in status,
anomaly (kind, iteration, phase, layer, blob) or warning kinds, or any GPU run's cross-check mismatched.

    python scripts/gpu-selftest-compare.py CPU_RUNS GPU_RUNS      (scripts/gpu-selftest.sh runs it)
"""
import json
import sys
from pathlib import Path

ANOMALY_FIELDS = ("kind", "iteration", "phase", "layer", "blob")


def load(folder: Path) -> dict:
    path = folder / "verdict.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def essentials(verdict: dict) -> tuple:
    """What must agree: status, the anomaly's place, and the kinds of warnings."""
    anomaly = verdict.get("anomaly") or {}
    return (verdict.get("status"), tuple(anomaly.get(k) for k in ANOMALY_FIELDS),
            tuple(sorted({w.get("kind") for w in verdict.get("warnings") or []})))


def describe(verdict: dict) -> str:
    if not verdict:
        return "no verdict"
    status, anomaly, warnings = essentials(verdict)
    text = str(status)
    if any(v is not None for v in anomaly):
        kind, iteration, phase, layer, blob = anomaly
        text += f" {kind}@{iteration} {phase} {layer}/{blob}"
    return text + "".join(f" +{w}" for w in warnings)


def compare(cpu_root: Path, gpu_root: Path) -> tuple[list, int]:
    """(Markdown lines, number of problems)."""
    nets = sorted({p.name for root in (cpu_root, gpu_root) for p in root.iterdir() if p.is_dir()})
    lines = ["| net | CPU verdict | GPU verdict | same | GPU cross-check (compared / mismatched) |",
             "| --- | --- | --- | --- | --- |"]
    problems = compared = mismatched = 0
    for net in nets:
        cpu, gpu = load(cpu_root / net), load(gpu_root / net)
        same = bool(cpu) and bool(gpu) and essentials(cpu) == essentials(gpu)
        check = gpu.get("crosscheck") or {}
        compared += check.get("compared", 0)
        mismatched += check.get("mismatched", 0)
        problems += (not same) + (check.get("mismatched", 0) > 0)
        cross = f"{check['compared']} / {check['mismatched']}" if "compared" in check else "-"
        lines.append(f"| {net} | {describe(cpu)} | {describe(gpu)} | {'yes' if same else '**NO**'} | {cross} |")
    lines += ["", f"{len(nets)} nets; verdicts equal on CPU and GPU: {sum('| yes |' in l for l in lines)}; "
                  f"GPU cross-check: {compared} values compared, {mismatched} mismatched."]
    return lines, problems


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    lines, problems = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
