"""Where the worker's time goes: runs the harness's worker in this process on a bench net and times its
callbacks (what the harness adds to each iteration), optionally under cProfile.

    .venv/bin/python bench/profile_worker.py [lenet|cifar_quick|resnet|googlenet|resnet50] [--iterations N] [--cprofile 30]

The worker runs as under `harness train` (statistics of every blob after every layer, rules, records
as JSON lines), except that its records go to /dev/null instead of a supervisor, so what is measured is
the worker's own cost, apart from the supervisor's and the machine's other load.
"""
import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness.run import worker  # noqa: E402
from solvers import solver_text  # noqa: E402


class Timer:
    """Wraps a method so every call adds its duration to `seconds`."""

    def __init__(self, owner, name):
        self.seconds, self.calls = 0.0, 0
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        setattr(owner, name, timed)


def spec_for(net: str, iterations: int, run_dir: Path) -> dict:
    """The worker's spec exactly as `harness train` writes it (worker.json, from a one-iteration run), with
    the effective solver set back to `iterations`."""
    solver_path = run_dir / "bench_solver.prototxt"
    solver_path.write_text(solver_text(net, iterations, debug=False))
    harness_dir = run_dir / "run"
    subprocess.run([str(REPO / ".venv" / "bin" / "harness"), "train", str(solver_path), "--run-dir", str(harness_dir),
                    "--quiet", "--max-iter", "1", "--no-html"], check=True, stderr=subprocess.DEVNULL)
    spec = json.loads((harness_dir / "worker.json").read_text())
    effective = Path(spec["solver"])
    effective.write_text(re.sub(r"(?m)^max_iter: \d+$", f"max_iter: {iterations}", effective.read_text()))
    return dict(spec, record_fd=os.open(os.devnull, os.O_WRONLY), snapshot_at_end=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net", nargs="?", default="lenet")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--cprofile", type=int, metavar="N", help="profile and print the N costliest functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-worker-") as tmp:
        spec = spec_for(args.net, args.iterations, Path(tmp))
        timers = {name: Timer(owner, name) for owner, name in [
            (worker.NetObserver, "after_forward"), (worker.NetObserver, "after_backward"),
            (worker.Worker, "on_gradients_ready")]}
        parts = {name: Timer(owner, attr) for name, (owner, attr) in {
            "statistics (stats.summarize_blob, Caffe's own calls)": (worker, "summarize_blob"),
            "statistics (stats.summarize, numpy)": (worker, "summarize"),
            "records (Channel.record)": (worker.Channel, "record"),
            "rules (RuleEngine.feed_layer, a layer's records)": (worker.RuleEngine, "feed_layer"),
            "rules (RuleEngine.feed, other records)": (worker.RuleEngine, "feed")}.items()}
        solve = Timer(worker.Worker, "run")
        profile = cProfile.Profile() if args.cprofile else None
        if profile:
            profile.enable()
        # Caffe's debug lines go where the supervisor would read them; they cost their formatting still.
        saved_stderr = os.dup(2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        try:
            worker.Worker(spec).run()
        finally:
            os.dup2(saved_stderr, 2)
        if profile:
            profile.disable()
    hooks = sum(t.seconds for t in timers.values())
    n = args.iterations
    print(f"{args.net}, {n} iterations: worker.run {solve.seconds:.2f} s (includes set-up); harness callbacks "
          f"{hooks:.3f} s = {hooks / n * 1e3:.2f} ms/iteration" + (" (under cProfile)" if profile else ""))
    for name, t in timers.items():
        print(f"  {name}: {t.seconds / n * 1e3:.2f} ms/iteration ({t.calls} calls)")
    for name, t in parts.items():
        print(f"    of which {name}: {t.seconds / n * 1e3:.2f} ms/iteration ({t.calls} calls)")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.cprofile)


if __name__ == "__main__":
    main()
