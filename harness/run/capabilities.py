"""What a Caffe build offers the harness, asked of the build itself in a child Python (importing caffe loads
libcaffe, and a Caffe CHECK failure aborts the process that hit it).

The child reports pycaffe's entry points (stepping.offers), the layer types the build registers and the
libcaffe it loaded, then trains the doctor's tiny net two iterations with debug_info on: its glog output
shows the debug_info format this build prints, read here with the harness's own log parser.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..log import glog
from .build import SOLVER, TINY_NET, caffe_failure
from .stepping import LAYERS, SOLVER as SOLVER_HOOKS, choose, AUTO

ITERATIONS = 2
TIMEOUT_S = 120
CHILD = """
import json, sys
import caffe
from harness.run.stepping import loaded_libcaffe, offers
caffe.set_mode_cpu()
solver = caffe.get_solver("solver.prototxt")
found = {"version": getattr(caffe, "__version__", None), "libcaffe": loaded_libcaffe(),
         "layer_types": sorted(caffe.layer_type_list()), "offers": offers(caffe, solver)}
solver.step(int(sys.argv[1]))
print(json.dumps(found))
"""
# What the display line says about the Caffe it came from (glog.py's kinds).
_DISPLAY_STYLES = {"display": "`Iteration N (X iter/s, Y s/N iters), loss = L` (BVLC since 2016)",
                   "final_loss": "`Iteration N, loss = L` (BVLC before 2016 and forks of that time)"}


@dataclass
class Capabilities:
    ok: bool
    problem: str = ""
    version: Optional[str] = None
    libcaffe: str = ""
    layer_types: list = field(default_factory=list)
    offers: dict = field(default_factory=dict)
    kinds: dict = field(default_factory=dict)       # glog kind -> lines of that kind in the tiny run
    unknown_example: str = ""
    cuda_libraries: list = field(default_factory=list)


def probe() -> Capabilities:
    """Ask the Caffe that a child Python imports (PYTHONPATH, so `--caffe` applies)."""
    with tempfile.TemporaryDirectory(prefix="harness-capabilities-") as folder:
        Path(folder, "net.prototxt").write_text(TINY_NET)
        Path(folder, "solver.prototxt").write_text(SOLVER.format(iterations=ITERATIONS) + "debug_info: true\n")
        try:
            result = subprocess.run([sys.executable, "-c", CHILD, str(ITERATIONS)], cwd=folder, capture_output=True,
                                    text=True, timeout=TIMEOUT_S, env=dict(os.environ, GLOG_logtostderr="1"))
        except subprocess.TimeoutExpired:
            return Capabilities(False, f"the probe did not finish within {TIMEOUT_S} s")
    if result.returncode != 0:
        return Capabilities(False, f"the probe's process exited {result.returncode}: {caffe_failure(result.stderr)}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    kinds, unknown = {}, ""
    for line in result.stderr.splitlines():
        for kind, fields, _ in glog.classify(line):
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "unknown" and not unknown and "]" in line and "[" in line.split("]", 1)[1]:
                unknown = line   # an unknown line with a bracketed marker looks like a debug line we miss
    return Capabilities(True, version=found["version"], libcaffe=found["libcaffe"], layer_types=found["layer_types"],
                        offers=found["offers"], kinds=kinds, unknown_example=unknown,
                        cuda_libraries=linked_cuda(found["libcaffe"]))


def linked_cuda(library: str) -> list:
    """The CUDA libraries (cudart, cublas, cudnn, ...) a library links, by `ldd`: [] for a CPU-only build."""
    if not library:
        return []
    try:
        result = subprocess.run(["ldd", library], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({line.split()[0] for line in result.stdout.splitlines()
                   if line.strip().startswith(("libcudart", "libcublas", "libcudnn", "libcurand", "libnccl"))})


def rows(found: Capabilities) -> list:
    """(label, value) rows for `harness doctor`."""
    offers = found.offers
    mode = choose(AUTO, offers)
    hooks = "yes (Net.after_forward, Net.after_backward)" if offers["after_forward"] and offers["after_backward"] \
        else "no: Net.after_forward / after_backward missing (BVLC added them in 2016)"
    observe = {LAYERS: "after every layer",
               SOLVER_HOOKS: "once per iteration, before the update (no per-layer hooks)",
               }.get(mode, "once per iteration with solver.step(1), after the update (no hooks, no callbacks)")
    display = next((style for kind, style in _DISPLAY_STYLES.items() if found.kinds.get(kind)), "no display line seen")
    debug = (f"{found.kinds.get('blob', 0)} per-layer lines and {found.kinds.get('norms', 0)} `All net params` "
             f"lines in {ITERATIONS} iterations; display line {display}")
    if found.unknown_example:
        debug += f"; not understood by the log parser: {found.unknown_example.strip()!r}"
    return [
        ("version", found.version or "not reported by pycaffe (no caffe.__version__)"),
        ("libcaffe", found.libcaffe or "not found in the process map"),
        ("links", "CUDA: " + ", ".join(found.cuda_libraries) if found.cuda_libraries
         else "no CUDA library (CPU only)"),
        ("layer hooks", hooks),
        ("callbacks", "yes (Solver.add_callback)" if offers["add_callback"] else "no: Solver.add_callback missing"),
        ("snapshot", "yes (Solver.snapshot)" if offers["snapshot"] else "weights only: Solver.snapshot missing"),
        ("train", f"--hooks {mode}: statistics {observe}"),
        ("statistics", "exact: Blob.debug_stats, Caffe's own sums (train compares each debug line as glog prints it)"
         if offers["debug_stats"] else
         "numpy (CuPy on a GPU) with a tolerance by blob size: this pycaffe has no Blob.debug_stats "
         "(`scripts/setup.sh --caffe-source SRC` adds it to a Caffe source tree you then rebuild)"),
        ("debug_info", debug),
        ("layer types", f"{len(found.layer_types)}, Python layer {'yes' if 'Python' in found.layer_types else 'no'}: "
                        + ", ".join(found.layer_types)),
    ]
