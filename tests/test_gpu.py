"""GPU support: the refusal of `--gpu` where it cannot work, the GPU statistics, GPU versus CPU runs.

Tests marked `gpu` need a CUDA build of Caffe (.venv-cuda, `make setup-cuda`) and a usable GPU; anywhere
else they skip. Run them with `.venv-cuda/bin/python -m pytest -m gpu tests/test_gpu.py -s` (docs/gpu.md).
"""
import math
import time

import numpy as np
import pytest

from harness.run import gpu, gpu_stats
from harness.core.errors import HarnessError
from harness.core.records import FLT_MAX
from harness.run.stats import summarize
from harness_run import harness, verdict


def device_reductions(values: np.ndarray) -> dict:
    """What gpu_stats.REDUCTIONS compute on the device, written with NumPy."""
    x = values.reshape(-1)
    finite = np.isfinite(x)
    magnitudes = np.where(finite, np.abs(x.astype(np.float64)), 0.0)
    return dict(asum=float(magnitudes.sum()), max_abs=float(magnitudes.max(initial=0.0)),
                nonfinite=int((~finite).sum()), nans=int(np.isnan(x).sum()), zeros=int((x == 0).sum()),
                sumsq=float(np.where(finite, x.astype(np.float64) ** 2, 0.0).sum()))


def assert_same_summary(got, want):
    assert got.count == want.count and got.nonfinite == want.nonfinite and got.overflow == want.overflow
    assert got.zero_fraction == want.zero_fraction
    assert got.max_abs == want.max_abs
    # summarize sums |x| in float32 like Caffe (about 1e-7 relative), the device in float64; both sum
    # squares in float64, in different orders.
    for field, rel in (("mean_abs", 1e-6), ("asum", 1e-6), ("sumsq", 1e-12)):
        a, b = getattr(got, field), getattr(want, field)
        if b is None or not math.isfinite(b):
            assert (a is None and b is None) or (math.isnan(a) and math.isnan(b)) or a == b, field
        else:
            assert a == pytest.approx(b, rel=rel, abs=1e-300), field


def blob_values(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(scale=3.0, size=(4, 3, 5, 7)).astype(np.float32)
    values[values < -2] = 0
    if kind == "nan":
        values[1, 2, 3, 4] = np.nan
        values[0, 0, 0, 0] = -np.inf
    elif kind == "inf":
        values[2, 1, 0, 3] = np.inf
    elif kind == "overflow":      # every element finite, Caffe's float sum is not
        values[:] = 3e37
    elif kind == "all_nonfinite":
        values[:] = np.nan
    return values


KINDS = ["plain", "nan", "inf", "overflow", "all_nonfinite", "empty"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_sumsq", [False, True])
def test_device_reductions_give_the_host_summary(kind, with_sumsq):
    values = np.zeros(0, np.float32) if kind == "empty" else blob_values(kind)
    r = device_reductions(values)
    got = gpu_stats.from_reductions(values.size, r["asum"], r["max_abs"], r["nonfinite"], r["nans"], r["zeros"],
                                    r["sumsq"] if with_sumsq else None)
    assert_same_summary(got, summarize(values, with_sumsq))


def test_overflow_is_flagged_only_when_every_element_is_finite():
    assert gpu_stats.from_reductions(2, 2 * FLT_MAX, FLT_MAX, 0, 0, 0, None).overflow
    assert not gpu_stats.from_reductions(2, FLT_MAX, FLT_MAX, 1, 0, 0, None).overflow


def test_missing_cupy_is_a_harness_error_that_says_what_to_install(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    assert not gpu_stats.cupy_available()
    with pytest.raises(HarnessError, match="cupy-cuda13x"):
        gpu_stats.summarize_device(0, 10, owner=None)


# ---- harness train --gpu N: the early refusal ----------------------------------------------------------

def fake_build(monkeypatch, tmp_path, cpu_only: str):
    (tmp_path / "BUILD_INFO").write_text(f"version=x\ncmake.CPU_ONLY={cpu_only}\ncmake.CUDA_VERSION=13.0\n"
                                         "cmake.CUDA_ARCH_BIN=80 86 89 90\ncmake.CUDA_ARCH_PTX=90\n")
    monkeypatch.setattr(gpu, "caffe_prefix", lambda: tmp_path)


def test_a_cpu_only_build_is_refused_without_starting_caffe(monkeypatch, tmp_path):
    fake_build(monkeypatch, tmp_path, "ON")
    monkeypatch.setattr(gpu, "probe_device", lambda device: pytest.fail("probed a CPU-only build"))
    with pytest.raises(HarnessError, match="CPU-only.*make setup-cuda"):
        gpu.require_gpu(0)
    assert not gpu.gpu_usable(0)


def test_a_cuda_build_without_a_gpu_is_refused_with_caffes_reason(monkeypatch, tmp_path):
    fake_build(monkeypatch, tmp_path, "OFF")
    monkeypatch.setattr(gpu, "probe_device", lambda device: (False, "Check failed: error == cudaSuccess (35 vs. 0)  "
                                                             "CUDA driver version is insufficient"))
    monkeypatch.setattr(gpu, "nvidia_smi_gpus", lambda: None)
    with pytest.raises(HarnessError) as raised:
        gpu.require_gpu(1)
    message = str(raised.value)
    assert "--gpu 1" in message and "driver version is insufficient" in message
    assert "no NVIDIA driver" in message and "80 86 89 90 PTX 90" in message


def test_a_usable_gpu_passes(monkeypatch, tmp_path):
    fake_build(monkeypatch, tmp_path, "OFF")
    monkeypatch.setattr(gpu, "probe_device", lambda device: (True, ""))
    build = gpu.require_gpu(0)
    assert build.cuda and build.cuda_version == "13.0"


def test_a_negative_gpu_number_is_refused():
    with pytest.raises(HarnessError, match="counts from 0"):
        gpu.require_gpu(-1)


@pytest.mark.caffe
def test_doctor_and_check_with_gpu_say_why_not_here():
    """`doctor --gpu N` trains the tiny net on the CPU, then reports the refusal as its problem; `check --gpu N`
    refuses once, before any net runs. Where GPU 0 works, both go on to train on it."""
    if gpu.gpu_usable(0):
        pytest.skip("GPU 0 is usable here")
    doctor = harness("doctor", "--gpu", 0)
    assert doctor.returncode == 1
    assert "3 iterations on a tiny DummyData net: loss" in doctor.stdout
    assert "NOT OK:\n  - --gpu 0: " in doctor.stdout and "on GPU 0" not in doctor.stdout
    check = harness("check", "prototxt/exploding_lr", "--gpu", 0)
    assert check.returncode == 2 and "--gpu 0: " in check.stderr and "exploding_lr" not in check.stdout + check.stderr


@pytest.mark.caffe
def test_the_probe_reports_caffes_abort_instead_of_dying():
    """The real probe where there is no GPU (CPU build: 'Cannot use GPU in CPU-only Caffe'; CUDA build
    without a driver: 'CUDA driver version is insufficient'): Caffe aborts the child, never this process."""
    if gpu.gpu_usable(0):
        pytest.skip("GPU 0 is usable here: nothing aborts")
    ok, reason = gpu.probe_device(0)
    assert not ok
    assert "GPU" in reason or "CUDA" in reason or "cuda" in reason, reason


# ---- on a GPU --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpu0():
    if not gpu.gpu_usable(0):
        pytest.skip("needs a CUDA build of Caffe and a usable GPU 0 (docs/gpu.md)")
    return 0


@pytest.fixture(scope="module")
def caffe_on_gpu(gpu0):
    pytest.importorskip("cupy")
    import caffe
    caffe.set_device(gpu0)
    caffe.set_mode_gpu()
    return caffe


def gpu_net(caffe, folder, shape):
    """Input x -> AbsVal y, so y is written by a GPU kernel and x can be set from the host."""
    dims = " ".join(f"dim: {d}" for d in shape)
    path = folder / "net.prototxt"
    path.write_text(f'name: "blob" force_backward: true\n'
                    f'layer {{ name: "x" type: "Input" top: "x" input_param {{ shape {{ {dims} }} }} }}\n'
                    'layer { name: "y" type: "AbsVal" bottom: "x" top: "y" }\n')
    return caffe.Net(str(path), caffe.TRAIN)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS[:-1])
def test_device_summary_equals_host_summary(caffe_on_gpu, kind, tmp_path):
    net = gpu_net(caffe_on_gpu, tmp_path, (4, 3, 5, 7))
    values = blob_values(kind, seed=1)
    net.blobs["x"].data[...] = values
    net.forward()                       # AbsVal on the GPU: y lives only on the device now
    for name, expected in (("x", values), ("y", np.abs(values))):
        got = gpu_stats.summarize_blob(net.blobs[name], "data", with_sumsq=True)
        assert_same_summary(got, summarize(expected, with_sumsq=True))
    net.blobs["y"].diff[...] = values
    net.backward()
    got = gpu_stats.summarize_blob(net.blobs["x"], "diff")
    assert_same_summary(got, summarize(net.blobs["x"].diff.copy()))


@pytest.mark.gpu
def test_device_statistics_avoid_the_host_round_trip(caffe_on_gpu, tmp_path):
    """Prints the time per statistic of a 16M-element blob both ways (run with -s to see it)."""
    net = gpu_net(caffe_on_gpu, tmp_path, (64, 256, 32, 32))
    net.blobs["x"].data[...] = np.random.default_rng(0).normal(size=net.blobs["x"].data.shape)
    timings = {}
    for label, compute in (("device", lambda: gpu_stats.summarize_blob(net.blobs["y"])),
                           ("host", lambda: summarize(net.blobs["y"].data))):
        compute()                       # compile / warm up
        started = time.perf_counter()
        for _ in range(10):
            net.forward()               # the layer writes y on the GPU, as in training
            compute()
        timings[label] = (time.perf_counter() - started) / 10
    print(f"\nforward + statistics of a {net.blobs['y'].count}-element blob: device {timings['device'] * 1e3:.2f} ms, "
          f"host copy {timings['host'] * 1e3:.2f} ms")
    assert_same_summary(gpu_stats.summarize_blob(net.blobs["y"]), summarize(net.blobs["y"].data))


@pytest.mark.gpu
@pytest.mark.caffe
@pytest.mark.parametrize("net", ["exploding_lr", "two_losses", "dead_relu"])
def test_a_zoo_net_halts_at_the_same_place_on_gpu_and_cpu(gpu0, net, tmp_path):
    runs = {}
    for label, extra in (("cpu", []), ("gpu", ["--gpu", gpu0])):
        run_dir = tmp_path / label
        started = time.perf_counter()
        result = harness("train", f"prototxt/{net}/solver.prototxt", "--run-dir", run_dir, "--quiet", *extra)
        print(f"\n{net} on {label}: {time.perf_counter() - started:.1f} s, exit {result.returncode}")
        assert result.returncode == 1, result.stderr          # halted, as pinned in expected.yaml
        runs[label] = verdict(run_dir)
    for field in ("kind", "iteration", "phase", "layer", "blob"):
        assert runs["gpu"]["anomaly"][field] == runs["cpu"]["anomaly"][field], field
    assert runs["gpu"]["status"] == runs["cpu"]["status"]
    assert runs["gpu"]["crosscheck"]["mismatched"] == 0
