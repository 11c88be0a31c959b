"""The CUDA bundle (scripts/bundle-cuda.py, docs/gpu.md) unpacked into a fresh folder and run with an empty
environment (`env -i`): `harness doctor` with either Caffe build, the CPU zoo check, and ldd/readelf
showing that nothing but glibc is resolved from the system (the NVIDIA driver, cuBLAS and cuRAND are the
target's).

The bundle's tests are `slow` (unpacking, then the whole zoo) and skip unless a bundle was built
(`make bundle-cuda`, or HARNESS_TEST_BUNDLE naming a tarball): they never build one, which takes the CUDA
build of Caffe. Those of the `verify` check itself run on hand-made folders, always.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.run.provenance import caffe_prefix
from harness_run import ROOT

BUNDLE = Path(os.environ.get("HARNESS_TEST_BUNDLE") or ROOT / "dist" / "caffe-harness-cuda.tar.xz")
SCRIPT = ROOT / "scripts" / "bundle-cuda.py"
# Where `make setup-cuda` put cuBLAS and cuRAND when the toolkit has none (scripts/cuda-options.sh).
WHEEL_LIBS = sorted(glob.glob(os.path.expanduser("~/.cache/caffe-harness/nvidia-wheels-*/nvidia/cu13/lib")))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if not BUNDLE.is_file():
        pytest.skip(f"no bundle at {BUNDLE}: `make bundle-cuda` builds one (docs/gpu.md)")
    folder = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["tar", "xf", str(BUNDLE), "-C", str(folder)], check=True)
    return folder / "caffe-harness-cuda"


def bundled(bundle: Path, *args, cwd=None, timeout=600, **env) -> subprocess.CompletedProcess:
    """A command of the bundle's bin/, with nothing in the environment but ENV (as `env -i` would)."""
    return subprocess.run([str(bundle / "bin" / args[0]), *map(str, args[1:])], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def cuda_libs() -> dict:
    if not WHEEL_LIBS:
        pytest.skip("no nvidia-cublas/nvidia-curand wheels from `make setup-cuda` here to stand in for the target's")
    return {"CAFFE_HARNESS_CUDA_LIBS": WHEEL_LIBS[0]}


def test_the_digits_file_gives_what_scikit_learn_gives(monkeypatch):
    """prototxt/digits.py reads scikit-learn's digits.csv.gz itself where the bundle has no scikit-learn."""
    sklearn = pytest.importorskip("sklearn")
    sys.path.insert(0, str(ROOT / "prototxt"))
    try:
        import digits
    finally:
        sys.path.remove(str(ROOT / "prototxt"))
    images, labels = digits.load()
    monkeypatch.setenv("HARNESS_DIGITS_CSV", str(Path(sklearn.__file__).parent / "datasets/data/digits.csv.gz"))
    from_file = digits.load()
    assert images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(from_file[0], images)
    np.testing.assert_array_equal(from_file[1], labels)


# ---- the ldd/readelf check, on folders made here ------------------------------------------------------

def verify(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "verify", str(folder)], capture_output=True, text=True)


def test_verify_names_a_library_resolved_from_the_system(tmp_path):
    shutil.copy2(shutil.which("xz"), tmp_path / "xz")          # needs liblzma.so.5, which is not glibc's
    result = verify(tmp_path)
    assert result.returncode == 1
    assert "xz: liblzma.so.5 resolved from the system (/" in result.stdout


def test_verify_names_an_rpath_outside_the_folder(tmp_path):
    prefix = caffe_prefix()
    if prefix is None:
        pytest.skip("no pycaffe in this Python")
    shutil.copy2(prefix / "lib" / "libcaffe.so", tmp_path / "libcaffe.so")   # as scripts/setup.sh built it
    result = verify(tmp_path)
    assert result.returncode == 1
    assert f"libcaffe.so: RUNPATH names folders outside the bundle: ['{prefix}/lib'" in result.stdout
    assert "libcaffe.so: libglog.so.1 resolved from the system (/" in result.stdout


# ---- the bundle itself ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_nothing_but_glibc_is_resolved_from_the_system(bundle):
    result = verify(bundle)
    assert result.returncode == 0, result.stdout
    line = result.stdout.splitlines()[0]
    assert "0 problem(s)" in line and "from the system: ld-linux-x86-64.so.2" in line
    needs = tuple(map(int, line.split("needing glibc >= ")[1].split(";")[0].split(".")))
    assert needs <= (2, 36), line     # the oldest glibc the bundle promises to run on
    count = int(line.split("verify: ")[1].split(" ELF")[0])
    assert count > 100, line          # python, its extension modules, numpy, h5py, two Caffe builds, lib/


@pytest.mark.slow
def test_doctor_runs_the_cpu_build_where_cublas_is_missing(bundle):
    result = bundled(bundle, "harness", "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    if f"bundle       {bundle}, CUDA build of Caffe" in out:
        pytest.skip("cuBLAS and cuRAND are where the launchers look by default on this machine (a CUDA toolkit)")
    assert f"bundle       {bundle}, CPU build of Caffe, since cuBLAS 13 / cuRAND 10" in out
    assert "Python       3.11" in out and f"({bundle}/python/bin/python3)" in out
    assert f"pycaffe      {bundle}/caffe-cpu/python/caffe" in out
    assert "CPU only (CPU_ONLY=ON)" in out and "caffe version 1.0.0" in out
    assert "3 iterations on a tiny DummyData net" in out and out.rstrip().endswith("OK")
    # Both builds are made without OpenCV (its libraries would not fit): said plainly, not a failure.
    assert 'OpenCV       no: convert_imageset and compute_image_mean stop with "This tool requires OpenCV"' in out
    assert "statistics   exact: Blob.debug_stats" in out


@pytest.mark.slow
@pytest.mark.caffe
def test_doctor_runs_the_cuda_build_in_cpu_mode_and_refuses_the_missing_gpu(bundle):
    env = cuda_libs()
    result = bundled(bundle, "harness", "doctor", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"CUDA build of Caffe; cuBLAS from {Path(env['CAFFE_HARNESS_CUDA_LIBS']).resolve()}" in out
    assert f"pycaffe      {bundle}/caffe/python/caffe" in out and "device       CUDA 13.0, cuDNN no" in out
    assert "OpenCV       no: " in out and "statistics   exact: Blob.debug_stats" in out
    assert "3 iterations on a tiny DummyData net" in out
    # No driver here: the probe's child aborts in Caffe, the doctor says why and fails.
    result = bundled(bundle, "harness", "doctor", "--gpu", "0", **env)
    assert result.returncode == 1
    assert "NOT OK" in result.stdout and "--gpu 0: Caffe cannot use GPU 0" in result.stdout


@pytest.mark.slow
@pytest.mark.caffe
@pytest.mark.parametrize("build", ["cpu", "cuda"])
def test_training_in_the_bundle_takes_caffes_own_statistics(bundle, tmp_path, build):
    """Both builds carry Blob.debug_stats: every debug line Caffe prints is the harness's float, exactly."""
    env = {"CAFFE_HARNESS_BUILD": build, **(cuda_libs() if build == "cuda" else {})}
    net = shutil.copytree(ROOT / "prototxt" / "exploding_lr", tmp_path / "exploding_lr")
    result = bundled(bundle, "harness", "train", net / "solver.prototxt", "--run-dir", tmp_path / "run", "--quiet",
                     cwd=tmp_path, **env)
    assert result.returncode == 1, result.stdout + result.stderr       # halted, as the zoo pins it
    verdict = json.loads((tmp_path / "run" / "verdict.json").read_text())
    anomaly = verdict["anomaly"]
    assert (anomaly["kind"], anomaly["iteration"], anomaly["layer"], anomaly["blob"]) == ("nonfinite", 3, "fc2", "fc2")
    crosscheck = verdict["crosscheck"]
    assert (crosscheck["method"], crosscheck["statistics"]) == ("exact", "caffe")
    assert crosscheck["compared"] > 50 and crosscheck["mismatched"] == 0


@pytest.mark.slow
def test_the_tests_that_need_opencv_skip_in_the_bundle_and_say_why(bundle):
    """The reference-model tests make their LMDBs with convert_imageset, which the bundle's builds (no
    OpenCV, to fit) have but cannot run: in the bundle's Python they skip, naming the reason."""
    result = bundled(bundle, "python", "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-rs",
                     "tests/test_reference_models.py", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" not in result.stdout and " failed" not in result.stdout
    reason = (f"Caffe was built without OpenCV (USE_OPENCV=OFF in {bundle}/caffe-cpu/BUILD_INFO): convert_imageset "
              'and compute_image_mean, which make these tests\' LMDBs, stop with "This tool requires OpenCV"')
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all(line.endswith(reason) for line in skipped), result.stdout[-3000:]


@pytest.mark.slow
def test_the_caffe_tool_and_the_python_packages_run(bundle):
    version = bundled(bundle, "caffe", "--version")
    assert version.returncode == 0 and "caffe version 1.0.0" in version.stdout + version.stderr
    result = bundled(bundle, "python", "-c", "import caffe, numpy, h5py, yaml, google.protobuf, six, markdown, "
                     "pytest; print(caffe.__file__, numpy.__file__)")
    assert result.returncode == 0, result.stderr
    pycaffe, numpy = result.stdout.split()
    assert pycaffe in (f"{bundle}/caffe-cpu/python/caffe/__init__.py", f"{bundle}/caffe/python/caffe/__init__.py")
    assert numpy.startswith(f"{bundle}/python/lib/")


@pytest.mark.slow
@pytest.mark.caffe
def test_the_zoo_check_passes_with_the_cuda_build_in_cpu_mode(bundle, tmp_path):
    """The CPU zoo check from the bundle, on a copy of prototxt/ (make_data.py writes into the net folders)."""
    zoo = tmp_path / "prototxt"
    shutil.copytree(ROOT / "prototxt", zoo, ignore=shutil.ignore_patterns("*.h5", "*.list", "__pycache__"))
    env = cuda_libs()
    result = bundled(bundle, "harness", "check", zoo, "--jobs", "2", cwd=tmp_path, timeout=1800,
                     CAFFE_HARNESS_BUILD="cuda", **env)
    nets = len(list(zoo.glob("*/expected.yaml")))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{nets} of {nets} nets as expected." in result.stdout


def test_the_selftest_comparison_flags_a_moved_anomaly_and_a_mismatch(tmp_path):
    """scripts/gpu-selftest-compare.py on two hand-made `harness check --keep` folders."""
    verdict = {"status": "halted", "anomaly": {"kind": "nonfinite", "iteration": 3, "phase": "forward",
                                               "layer": "fc2", "blob": "fc2"},
               "warnings": [{"kind": "exploding"}], "crosscheck": {"compared": 96, "mismatched": 0}}
    for device in ("cpu", "gpu"):
        for net in ("exploding_lr", "healthy"):
            (tmp_path / device / net).mkdir(parents=True)
            text = verdict if net == "exploding_lr" else {"status": "ok", "crosscheck": {"compared": 5, "mismatched": 0}}
            (tmp_path / device / net / "verdict.json").write_text(json.dumps(text))
    compare = [sys.executable, str(ROOT / "scripts" / "gpu-selftest-compare.py"), str(tmp_path / "cpu"),
               str(tmp_path / "gpu")]
    same = subprocess.run(compare, capture_output=True, text=True)
    assert same.returncode == 0, same.stdout
    assert "| exploding_lr | halted nonfinite@3 forward fc2/fc2 +exploding |" in same.stdout
    assert "2 nets; verdicts equal on CPU and GPU: 2; GPU cross-check: 101 values compared, 0 mismatched." in same.stdout
    moved = dict(verdict, anomaly=dict(verdict["anomaly"], iteration=4), crosscheck={"compared": 96, "mismatched": 1})
    (tmp_path / "gpu" / "exploding_lr" / "verdict.json").write_text(json.dumps(moved))
    differs = subprocess.run(compare, capture_output=True, text=True)
    assert differs.returncode == 1
    assert "nonfinite@4 forward fc2/fc2 +exploding | **NO** | 96 / 1 |" in differs.stdout
    assert "verdicts equal on CPU and GPU: 1; GPU cross-check: 101 values compared, 1 mismatched." in differs.stdout
