"""The Caffe build pycaffe loads: what scripts/setup.sh recorded about it (BUILD_INFO beside the build), its
`caffe` tool, and whether it can train at all: a tiny solver run in a child process, because a Caffe CHECK
failure aborts the whole process that hit it.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

# The smallest net that exercises a data layer, a learnable layer, a loss, backward and the SGD update.
TINY_NET = """name: "doctor"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 8 dim: 4 } shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
SOLVER = """net: "net.prototxt"
base_lr: 0.1
lr_policy: "fixed"
max_iter: {iterations}
display: 1
random_seed: 1
solver_mode: CPU
snapshot_after_train: false
"""
# Runs in the child, in the folder holding net.prototxt and solver.prototxt, with (iterations, GPU number or
# -1 for the CPU); prints one JSON line.
CHILD = """
import json, sys
import caffe
device = int(sys.argv[2])
if device < 0:
    caffe.set_mode_cpu()
else:
    caffe.set_device(device)
    caffe.set_mode_gpu()
solver = caffe.get_solver("solver.prototxt")
losses = []
for _ in range(int(sys.argv[1])):
    solver.step(1)
    losses.append(float(solver.net.blobs["loss"].data))
print(json.dumps({"iterations": solver.iter, "losses": losses}))
"""
ITERATIONS = 3
CHILD_TIMEOUT_S = 120


def read_build_info(path: Path) -> dict[str, str]:
    """BUILD_INFO is `key=value` lines; `cmake.NAME` keys are CMake's resolved cache entries."""
    info = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            info[key.strip()] = value.strip()
    return info


def describe_build(info: dict[str, str]) -> list[tuple[str, str]]:
    """(label, value) rows for the build facts a Caffe user asks about first."""
    def cmake(name: str) -> str:
        return info.get(f"cmake.{name}", "not recorded")

    def on_off(option: str, detail: str = "") -> str:
        value = cmake(option)
        if value not in ("ON", "OFF"):
            return value
        extra = info.get(f"cmake.{detail}") if detail else None
        return ("yes" if value == "ON" else "no") + (f" ({extra})" if value == "ON" and extra else "")

    if cmake("CPU_ONLY") == "ON":
        device = "CPU only (CPU_ONLY=ON)"
    elif cmake("CPU_ONLY") == "OFF":
        device = f"CUDA {info.get('cmake.CUDA_VERSION', '(version not recorded)')}, cuDNN {on_off('USE_CUDNN')}"
    else:
        device = "not recorded"
    blas = cmake("BLAS") + (f" ({info['cmake.OpenBLAS_LIB']})" if "cmake.OpenBLAS_LIB" in info else "")
    opencv = on_off("USE_OPENCV")
    if opencv == "no":      # the tools are built all the same, and abort at once (the CUDA bundle's builds)
        opencv += f": {' and '.join(OPENCV_TOOLS)} stop with \"This tool requires OpenCV\""
    return [
        ("Caffe", info.get("version", "not recorded")),
        ("source", info.get("source", "not recorded")),
        ("built", f"{info.get('built', 'not recorded')}, {cmake('CMAKE_BUILD_TYPE')}, "
                  f"python {cmake('python_version')}, numpy headers {info.get('numpy_headers', 'not recorded')}"),
        ("device", device),
        ("BLAS", blas),
        ("Python layer", on_off("BUILD_python_layer")),
        ("LMDB", on_off("USE_LMDB", "LMDB_LIBRARIES")),
        ("HDF5", on_off("USE_HDF5", "HDF5_C_LIBRARY_hdf5")),
        ("LevelDB", on_off("USE_LEVELDB")),
        ("OpenCV", opencv),
    ]


# The tools scripts/setup.sh builds beside `caffe` (its CAFFE_TOOLS), into the build's bin/ and the venv's.
CAFFE_TOOLS = ("convert_imageset", "compute_image_mean", "extract_features", "upgrade_net_proto_text",
               "upgrade_solver_proto_text")
OPENCV_TOOLS = CAFFE_TOOLS[:2]    # they read images: without OpenCV, Caffe's LOG(FATAL) is all they do


def caffe_tools(bin_dir: Path) -> str:
    """Which of Caffe's tools the build has in `bin_dir`, and which it lacks."""
    present = [tool for tool in CAFFE_TOOLS if (bin_dir / tool).is_file()]
    missing = [tool for tool in CAFFE_TOOLS if tool not in present]
    text = ", ".join(present) if present else "none"
    return text + (f"; missing: {', '.join(missing)}" if missing else "")


def caffe_tool_version(binary: Path) -> str:
    if not binary.is_file():
        return f"missing: {binary}"
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    return output if result.returncode == 0 else f"{binary} --version failed: {last_lines(output)}"


def run_solver_in_child(net: str, iterations: int = ITERATIONS, gpu: Optional[int] = None) -> tuple[bool, str]:
    """Train `net` for `iterations` steps in a child Python, on the CPU or on GPU `gpu`; (ok, one-line
    summary or what went wrong)."""
    with tempfile.TemporaryDirectory(prefix="harness-doctor-") as folder:
        Path(folder, "net.prototxt").write_text(net)
        Path(folder, "solver.prototxt").write_text(SOLVER.format(iterations=iterations))   # CHILD sets the mode
        try:
            result = subprocess.run([sys.executable, "-c", CHILD, str(iterations), str(-1 if gpu is None else gpu)],
                                    cwd=folder, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return False, f"the tiny solver did not finish {iterations} iterations in {CHILD_TIMEOUT_S} s"
    if result.returncode != 0:
        how = f"was killed by signal {-result.returncode}" if result.returncode < 0 else f"exited {result.returncode}"
        return False, f"the tiny solver's process {how}: {caffe_failure(result.stderr)}"
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return False, f"the tiny solver printed no result: {last_lines(result.stdout + result.stderr)}"
    losses = report["losses"]
    if report["iterations"] != iterations or not all(map(math.isfinite, losses)):
        return False, f"the tiny solver ran {report['iterations']}/{iterations} iterations, losses {losses}"
    where = "" if gpu is None else f" on GPU {gpu}"
    return True, f"{iterations} iterations on a tiny DummyData net{where}: loss " + ", ".join(f"{x:.4g}" for x in losses)


def caffe_failure(stderr: str) -> str:
    """Caffe's own reason: its glog F-line (`F1123 ... Check failed: ...`), else the last lines."""
    fatal = [line for line in stderr.splitlines() if line.startswith("F") and "] " in line]
    return fatal[-1].split("] ", 1)[1] if fatal else last_lines(stderr)


def last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) if lines else "(no output)"
