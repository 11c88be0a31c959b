"""`harness doctor`: which Caffe this is, how it was built, what it offers the harness, and whether it can train.

The build facts come from the BUILD_INFO file that scripts/setup.sh writes beside the cached build, found
from where pycaffe lives, without importing caffe here (harness/run/build.py); for a build of the user's
own (`--caffe DIR`) from the folder itself. What pycaffe offers (per-layer hooks, solver callbacks, layer
types) and the debug_info format it prints are asked of the build in a child (harness/run/capabilities.py).
"""
from __future__ import annotations

import importlib.metadata
import os
import sys

from ..core.errors import HarnessError
from ..run import caffe_dir, capabilities, gpu
from ..run.build import TINY_NET, caffe_tool_version, caffe_tools, describe_build, read_build_info, run_solver_in_child
from ..run.provenance import caffe_prefix


def add_arguments(parser) -> None:
    parser.add_argument("--caffe", metavar="DIR",
                        help=f"examine the Caffe build in DIR instead of the harness's own (also ${caffe_dir.ENV})")
    parser.add_argument("--gpu", type=int, metavar="N",
                        help="also train the tiny net on GPU N (after the CPU), as `harness train --gpu N` would")


def run(args) -> int:
    build = caffe_dir.use(args.caffe)
    problems: list[str] = []
    print("caffe-harness doctor")
    if os.environ.get("CAFFE_HARNESS_BUNDLE"):     # set by the CUDA bundle's launchers (docs/gpu.md)
        show("bundle", os.environ["CAFFE_HARNESS_BUNDLE"])
    show("Python", f"{sys.version.split()[0]} ({sys.executable})")
    for package in ("numpy", "protobuf"):
        show(package, package_version(package))

    prefix = caffe_prefix()
    if prefix is None:
        problems.append("pycaffe is not importable from this Python: run `make setup` (scripts/setup.sh), "
                        "then use .venv/bin/harness.")
    else:
        show("pycaffe", str(prefix / "python" / "caffe"))
        if build is not None:
            identity = caffe_dir.identity(build)
            git = f" (git {identity['git_describe']})" if identity["git_describe"] else ""
            show("Caffe dir", identity["path"] + git)
            version = identity["version"] or "no version (`caffe --version` prints only its name)"
            show("caffe tool", f"{version} ({build.binary})" if build.binary
                 else f"not found in {build.root} (bin/caffe, build/tools/caffe)")
        else:
            info_path = prefix / "BUILD_INFO"
            if info_path.is_file():
                for label, value in describe_build(read_build_info(info_path)):
                    show(label, value)
                show("caffe tool", caffe_tool_version(prefix / "bin" / "caffe"))
                show("tools", caffe_tools(prefix / "bin"))
            else:
                show("build", f"unknown: no {info_path} (not built by scripts/setup.sh)")
        found = capabilities.probe()
        if found.ok:
            for label, value in capabilities.rows(found):
                show(label, value)
        else:
            problems.append(found.problem)
        ok, message = run_solver_in_child(TINY_NET)
        show("solver", message)
        if not ok:
            problems.append(message)
        if args.gpu is not None:
            problems += check_gpu(args.gpu)

    if problems:
        print("NOT OK:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("OK")
    return 0


def check_gpu(device: int) -> list[str]:
    """The GPU line and the tiny net on GPU `device`; the problems found."""
    try:
        gpu.require_gpu(device)
    except HarnessError as error:
        return [str(error)]
    names = gpu.nvidia_smi_gpus() or []
    show("GPU", next((name for name in names if name.startswith(f"GPU {device}:")), f"GPU {device}"))
    ok, message = run_solver_in_child(TINY_NET, gpu=device)
    show("solver (GPU)", message)
    return [] if ok else [message]


def show(label: str, value: str) -> None:
    print(f"  {label:<13}{value}")


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
