"""Regenerate the recorded Caffe logs under tests/logs/ (needs the real `caffe` binary; the tests do not).

    .venv/bin/python tests/logs/make_fixtures.py

Each `nets/<name>.solver.prototxt` is run by `caffe train` in a scratch directory with GLOG_logtostderr=1,
and its stderr is kept as `<name>.log`. `forum_paste.txt` is derived from display1.log: iteration 1 joined
onto one physical line, once with glog prefixes and once with the prefixes stripped, as in forum posts.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
CAFFE = Path(sys.executable).parent / "caffe"
RUNS = ("display1", "display5", "itersize2", "nan", "fatal")


def write_data(where: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 8)):
        with h5py.File(where / f"{split}.h5", "w") as f:
            f["data"] = rng.normal(size=(n, 8)).astype("f4")
            f["label"] = rng.integers(0, 3, size=n).astype("f4")
        (where / f"{split}.txt").write_text(f"{split}.h5\n")


def run(name: str, where: Path) -> None:
    env = dict(os.environ, GLOG_logtostderr="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([str(CAFFE), "train", "-solver", f"{name}.solver.prototxt"], cwd=where, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    (HERE / f"{name}.log").write_bytes(proc.stderr)
    print(f"{name}.log: exit {proc.returncode}, {len(proc.stderr.splitlines())} lines")


def forum_paste() -> None:
    """Iteration 1 of display1.log (its debug lines up to its lr line) joined onto one line, twice."""
    lines = (HERE / "display1.log").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if line.endswith("Iteration 1, lr = 0.01"))
    start = next(i for i in range(end, 0, -1) if "Iteration 0, lr" in lines[i]) + 1
    block = lines[start:end + 1]
    stripped = [re.sub(r"^\S+ \S+\s+\d+ \S+\] ", "", line).strip() for line in block]
    (HERE / "forum_paste.txt").write_text(" ".join(block) + "\n" + " ".join(stripped) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        write_data(where)
        (where / "snap").mkdir()
        for path in (HERE / "nets").glob("*.prototxt"):
            shutil.copy(path, where)
        for name in RUNS:
            run(name, where)
    forum_paste()


if __name__ == "__main__":
    main()
