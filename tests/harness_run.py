"""Running the real `harness` command in tests: a subprocess, as a user would."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness.core.records import IterationEnd
from harness.core.store import iter_run_records

ROOT = Path(__file__).resolve().parents[1]

# A small net that trains fast and forever (max_iter is large): for interrupting and killing runs.
ENDLESS_NET = """name: "endless"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 }
    shape { dim: 16 dim: 32 } shape { dim: 16 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param { num_output: 32 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
ENDLESS_SOLVER = 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 1000000\ndisplay: 1\nrandom_seed: 3\n'


def write_net(folder: Path, net: str = ENDLESS_NET, solver: str = ENDLESS_SOLVER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.prototxt").write_text(net)
    (folder / "solver.prototxt").write_text(solver)
    return folder / "solver.prototxt"


def zoo_solver(name: str) -> Path:
    """A zoo net's solver, with its data written first (make_data.py is deterministic and idempotent)."""
    folder = ROOT / "prototxt" / name
    if (folder / "make_data.py").is_file():
        subprocess.run([sys.executable, "make_data.py"], cwd=folder, check=True, capture_output=True)
    return folder / "solver.prototxt"


def harness(*args, cwd=ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, **kwargs)


def start_harness(*args, cwd=ROOT, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def iterations_done(run_dir: Path) -> list:
    return [r.iteration for r in iter_run_records(run_dir) if isinstance(r, IterationEnd)]


def wait_for_iterations(run_dir: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(iterations_done(run_dir)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{run_dir}: fewer than {count} iterations after {timeout} s")
        time.sleep(0.05)


def verdict(run_dir: Path) -> dict:
    return json.loads((run_dir / "verdict.json").read_text())


def worker_pid(run_dir: Path) -> int:
    return int((run_dir / "worker.pid").read_text())


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
