"""`harness doctor`: which Caffe this is, how it was built, and whether it can train at all.

The build facts come from the BUILD_INFO file that scripts/setup.sh writes beside the cached build, found
from where pycaffe lives, without importing caffe here (harness/run/build.py).
"""
from __future__ import annotations

import importlib.metadata
import sys

from ..run.build import TINY_NET, caffe_tool_version, caffe_tools, describe_build, read_build_info, run_solver_in_child
from ..run.provenance import caffe_prefix


def add_arguments(parser) -> None:
    """No options: the doctor always does the same checks."""


def run(args) -> int:
    problems: list[str] = []
    print("caffe-harness doctor")
    show("Python", f"{sys.version.split()[0]} ({sys.executable})")
    for package in ("numpy", "protobuf"):
        show(package, package_version(package))

    prefix = caffe_prefix()
    if prefix is None:
        problems.append("pycaffe is not importable from this Python: run `make setup` (scripts/setup.sh), "
                        "then use .venv/bin/harness.")
    else:
        show("pycaffe", str(prefix / "python" / "caffe"))
        info_path = prefix / "BUILD_INFO"
        if info_path.is_file():
            for label, value in describe_build(read_build_info(info_path)):
                show(label, value)
            show("caffe tool", caffe_tool_version(prefix / "bin" / "caffe"))
            show("tools", caffe_tools(prefix / "bin"))
        else:
            show("build", f"unknown: no {info_path} (not built by scripts/setup.sh)")
        ok, message = run_solver_in_child(TINY_NET)
        show("solver", message)
        if not ok:
            problems.append(message)

    if problems:
        print("NOT OK:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("OK")
    return 0


def show(label: str, value: str) -> None:
    print(f"  {label:<13}{value}")


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
