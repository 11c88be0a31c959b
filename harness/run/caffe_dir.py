"""A Caffe build of the user's own (`--caffe DIR`, or HARNESS_CAFFE): its pycaffe, libcaffe and `caffe` tool.

DIR is the folder holding `python/caffe`: a source tree built with `make pycaffe` (Makefile, or CMake in a
`build` folder, which links `python/caffe/_caffe.so` into it) or an install prefix (python/, lib/, bin/).
Nothing is rebuilt. `activate` puts the build first on every path that picks a Caffe: this process's
sys.path (so caffe_pb2, with the fork's own layer parameters, comes from it), and PYTHONPATH and
LD_LIBRARY_PATH for the processes it starts (the worker, the doctor's and the GPU probe's children).
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..core.errors import HarnessError

ENV = "HARNESS_CAFFE"
_PB2 = "caffe.proto.caffe_pb2"


@dataclass(frozen=True)
class CaffeDir:
    root: Path
    python: Path              # the folder that holds the `caffe` package
    binary: Optional[Path]    # its `caffe` tool, where there is one
    lib_dirs: tuple           # folders with its libcaffe


def _extension(package: Path) -> Optional[Path]:
    return next(iter(sorted(package.glob("_caffe*.so"))), None)


def locate(path: str) -> CaffeDir:
    """The build in `path`, or a HarnessError saying what is missing there."""
    root = Path(path).expanduser().resolve()
    package = root / "python" / "caffe"
    usage = ("--caffe takes the folder of a Caffe build that holds python/caffe: a source tree built with "
             "`make pycaffe` (or CMake's pycaffe target), or an install prefix with python/, lib/ and bin/")
    if not root.is_dir():
        raise HarnessError(f"--caffe {path}: no such folder. {usage}.")
    if not (package / "__init__.py").is_file():
        raise HarnessError(f"--caffe {path}: there is no {package / '__init__.py'}. {usage}.")
    extension = _extension(package)
    if extension is None or not extension.exists():
        what = f"{extension} points to {os.readlink(extension)}, which does not exist" if extension else \
            f"{package} holds no _caffe.so"
        raise HarnessError(f"--caffe {path}: pycaffe is not built ({what}). Build it there with `make pycaffe` "
                           "(or CMake's pycaffe target); the harness does not rebuild Caffe.")
    if not (package / "proto" / "caffe_pb2.py").is_file():
        raise HarnessError(f"--caffe {path}: {package / 'proto' / 'caffe_pb2.py'} is missing. It is generated "
                           "from the build's caffe.proto by `make pycaffe` (CMake: the pycaffe target).")
    # CMake builds link _caffe.so from their build folder's lib/: that folder's tools/ holds the tool.
    build = extension.resolve().parent.parent
    candidates = [root / "bin" / "caffe", build / "tools" / "caffe", build / "tools" / "caffe.bin",
                  root / "build" / "tools" / "caffe", root / "build" / "tools" / "caffe.bin"]
    binary = next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
    lib_dirs = tuple(dict.fromkeys(d for d in (root / "lib", build / "lib", root / "build" / "lib")
                                   if any(d.glob("libcaffe*.so*"))))
    return CaffeDir(root, root / "python", binary, lib_dirs)


def requested(option: Optional[str]) -> Optional[str]:
    """The build asked for: the option, else the environment variable, else None (the harness's own)."""
    return option or os.environ.get(ENV) or None


def activate(build: CaffeDir) -> None:
    """Make `build` the Caffe this process and its children use. Call before anything loads caffe_pb2."""
    loaded = sys.modules.get(_PB2)
    if loaded is not None and not Path(loaded.__file__).resolve().is_relative_to(build.python):
        raise RuntimeError(f"caffe_pb2 was loaded from {loaded.__file__} before --caffe {build.root} took effect")
    sys.path.insert(0, str(build.python))
    importlib.invalidate_caches()

    def prepend(variable: str, folders) -> None:
        os.environ[variable] = os.pathsep.join([str(f) for f in folders] + [p for p in [os.environ.get(variable)] if p])
    prepend("PYTHONPATH", [build.python])
    prepend("LD_LIBRARY_PATH", build.lib_dirs)
    os.environ[ENV] = str(build.root)


def use(option: Optional[str]) -> Optional[CaffeDir]:
    """locate and activate the requested build, if any (what the commands call first)."""
    path = requested(option)
    if path is None:
        return None
    build = locate(path)
    activate(build)
    return build


def _run(command: list, cwd: Optional[Path] = None) -> Optional[str]:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (result.stdout + result.stderr).strip() if result.returncode == 0 else None


def identity(build: CaffeDir) -> dict:
    """What run.json and the doctor say about the build: where, which version, which commit."""
    version = _run([str(build.binary), "--version"]) if build.binary else None
    return {"path": str(build.root), "pycaffe": str(build.python / "caffe"),
            "binary": str(build.binary) if build.binary else None, "lib_dirs": [str(d) for d in build.lib_dirs],
            # gflags prints the program name alone where the build set no version (Caffe before 1.0)
            "version": version.splitlines()[-1] if version and any(c.isdigit() for c in version) else None,
            "git_describe": _run(["git", "describe", "--always", "--tags", "--dirty"], cwd=build.root)
            if (build.root / ".git").exists() else None}
