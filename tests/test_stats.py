import math

import numpy as np
import pytest

from harness.core.records import FLT_MAX
from harness.run.stats import param_norms, summarize


def reference(values):
    flat = values.astype(np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    return {
        "asum": np.abs(finite).sum(),
        "nonfinite": int((~np.isfinite(flat)).sum()),
        "zero_fraction": float((flat == 0).mean()),
        "max_abs": float(np.abs(finite).max()) if finite.size else 0.0,
        "sumsq": float((finite ** 2).sum()),
    }


@pytest.mark.parametrize("seed", range(5))
def test_matches_numpy_reference_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(7, 3, 5)).astype(np.float32)
    values[values < -1] = 0
    got = summarize(values, with_sumsq=True)
    ref = reference(values)
    assert got.count == values.size
    # The sum is float32 like Caffe's (pairwise: within float32 rounding of the exact sum).
    assert got.mean_abs == pytest.approx(ref["asum"] / values.size, rel=1e-6)
    assert got.nonfinite == 0
    assert got.zero_fraction == pytest.approx(ref["zero_fraction"])
    assert got.max_abs == pytest.approx(ref["max_abs"])
    assert got.sumsq == pytest.approx(ref["sumsq"], rel=1e-12)
    assert not got.overflow


def test_nan_and_inf_are_counted_and_printed_like_caffe():
    values = np.array([1.0, np.nan, -np.inf, 0.0], dtype=np.float32)
    got = summarize(values, with_sumsq=True)
    assert math.isnan(got.mean_abs)          # Caffe's float sum is nan as soon as one element is
    assert got.nonfinite == 2
    assert got.max_abs == 1.0 and got.sumsq == 1.0 and got.zero_fraction == 0.25
    only_inf = summarize(np.array([2.0, np.inf], dtype=np.float32))
    assert only_inf.mean_abs == math.inf and only_inf.nonfinite == 1


def test_float_sum_overflow_is_flagged_with_the_true_mean():
    values = np.full(4, 3e38, dtype=np.float32)
    got = summarize(values)
    assert got.overflow and got.nonfinite == 0
    assert got.mean_abs == pytest.approx(3e38, rel=1e-6)
    assert got.mean_abs * got.count > FLT_MAX


def test_empty_blob():
    got = summarize(np.zeros((0, 3), dtype=np.float32))
    assert got.count == 0 and got.mean_abs == 0.0 and got.nonfinite == 0


def test_float32_fast_path_agrees_with_the_general_path():
    # Contiguous float32 (every Caffe blob) takes a path of its own; float64 input takes the general one.
    rng = np.random.default_rng(7)
    values = rng.normal(size=(64, 20, 5, 5)).astype(np.float32)
    values[values < -0.3] = 0
    values[0, 0, 0, :3] = -0.0                                  # ReLU's backward writes -0.0
    values[1, 0, 0, 0] = np.float32(1e-42)                      # subnormal: not zero
    fast = summarize(values, with_sumsq=True)
    general = summarize(values.astype(np.float64), with_sumsq=True)
    assert fast.zero_fraction == general.zero_fraction == float((values == 0).mean())
    assert fast.mean_abs == pytest.approx(general.mean_abs, rel=1e-6)     # float32 sum vs float64 sum
    assert fast.asum == pytest.approx(general.asum, rel=1e-6)
    assert fast.sumsq == pytest.approx(general.sumsq, rel=1e-12)
    assert fast.max_abs == general.max_abs and fast.nonfinite == general.nonfinite == 0


def test_reused_buffer_leaves_nothing_behind():
    # A large blob, then a smaller one: the smaller one's statistics see only its own values.
    summarize(np.full(10_000, 7.0, dtype=np.float32))
    got = summarize(np.array([0.0, -1.0, 0.5], dtype=np.float32), with_sumsq=True)
    assert got.max_abs == 1.0 and got.mean_abs == pytest.approx(0.5) and got.sumsq == pytest.approx(1.25)
    assert got.zero_fraction == pytest.approx(1 / 3)


def test_non_contiguous_and_nonfinite_float32():
    values = np.arange(-5, 5, dtype=np.float32).reshape(2, 5).T     # a transposed view
    got = summarize(values)
    assert got.mean_abs == pytest.approx(2.5) and got.zero_fraction == pytest.approx(0.1) and got.max_abs == 5.0
    with_nan = np.array([1.0, np.nan, 0.0, 3e38, 3e38], dtype=np.float32)
    got = summarize(with_nan, with_sumsq=True)
    assert math.isnan(got.mean_abs) and got.nonfinite == 1 and got.max_abs == pytest.approx(3e38, rel=1e-6)
    assert not got.overflow and got.zero_fraction == pytest.approx(0.2)


def test_fast_path_falls_back_to_float64_to_tell_overflow_from_nan():
    big = np.full(1000, 1e36, dtype=np.float32)                # float32 sum: inf; every element finite
    overflowed = summarize(big)
    assert overflowed.overflow and overflowed.nonfinite == 0
    assert overflowed.mean_abs == pytest.approx(1e36, rel=1e-6)
    big[500] = np.nan
    poisoned = summarize(big)
    assert poisoned.nonfinite == 1 and math.isnan(poisoned.mean_abs) and not poisoned.overflow


# Blob.debug_stats, the patched pycaffe's entry point, on real blobs of a real net (in a child process:
# only one process of ours loads libcaffe per test run, and it must not be this one).
DEBUG_STATS_CHILD = """
import json, sys
import numpy as np
import caffe
from harness.run.stats import summarize_blob, param_norms
caffe.set_mode_cpu()
net = caffe.Net(sys.argv[1], caffe.TRAIN)
blob = net.blobs["x"]
out = {"untouched_diff": blob.debug_stats(diff=True)}
cases = {"plain": [1.0, -2.0, 0.0, -0.0, 3.5, 1e-42], "nonfinite": [1.0, float("nan"), -float("inf"), 0.0, -4.0, 2.0],
         "overflow": [3e38, -3e38, 3e38, 3e38, 1.0, 0.0]}
for name, values in cases.items():
    blob.data[...] = np.array(values, np.float32)
    blob.diff[...] = -2 * np.array(values, np.float32)
    out[name] = {"data": blob.debug_stats(False, True), "diff": blob.debug_stats(diff=True, sumsq=True),
                 "summary": summarize_blob(blob, "data", with_sumsq=True)._asdict()}
norm_parts = [summarize_blob(blob, "data", with_sumsq=True) for _ in range(3)]
out["norms"] = param_norms(norm_parts, norm_parts)
print(json.dumps(out, default=str))
"""
INPUT_NET = 'name: "x"\nlayer { name: "x" type: "Input" top: "x" input_param { shape { dim: 6 } } }\n'


@pytest.fixture(scope="module")
def debug_stats(tmp_path_factory):
    import json
    import subprocess
    import sys
    net = tmp_path_factory.mktemp("debug_stats") / "net.prototxt"
    net.write_text(INPUT_NET)
    result = subprocess.run([sys.executable, "-c", DEBUG_STATS_CHILD, str(net)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.caffe
def test_debug_stats_are_caffes_sums_and_one_pass_over_the_elements(debug_stats):
    # (asum, mean_abs, sumsq, finite_asum, max_abs, zeros, nonfinite)
    asum, mean_abs, sumsq, finite_asum, max_abs, zeros, nonfinite = debug_stats["plain"]["data"]
    assert asum == np.float32(6.5) and mean_abs == float(np.float32(6.5) / np.float32(6))
    assert sumsq == float(np.float32(1 + 4 + 12.25)) and finite_asum == pytest.approx(6.5)
    assert max_abs == 3.5 and zeros == 2 and nonfinite == 0       # -0.0 is a zero, 1e-42 (subnormal) is not
    diff = debug_stats["plain"]["diff"]
    assert diff[0] == 13.0 and diff[4] == 7.0 and diff[5] == 2     # the diff, not the data


@pytest.mark.caffe
def test_debug_stats_count_nonfinite_and_keep_the_finite_maximum(debug_stats):
    asum, mean_abs, _, finite_asum, max_abs, zeros, nonfinite = debug_stats["nonfinite"]["data"]
    assert math.isnan(float(asum)) and math.isnan(float(mean_abs))   # Caffe's sum is nan, as it prints
    assert nonfinite == 2 and zeros == 1 and max_abs == 4.0 and finite_asum == 7.0
    summary = debug_stats["nonfinite"]["summary"]
    assert summary["nonfinite"] == 2 and summary["exact"] and not summary["overflow"]


@pytest.mark.caffe
def test_debug_stats_tell_overflow_from_nonfinite_elements(debug_stats):
    asum, _, _, finite_asum, max_abs, _, nonfinite = debug_stats["overflow"]["data"]
    assert float(asum) == math.inf and nonfinite == 0 and finite_asum == pytest.approx(1.2e39 + 1, rel=1e-6)
    summary = debug_stats["overflow"]["summary"]
    assert summary["overflow"] and summary["mean_abs"] == pytest.approx(2e38, rel=1e-6)   # the true mean
    assert max_abs == pytest.approx(3e38, rel=1e-6)


@pytest.mark.caffe
def test_an_untouched_diff_reads_as_zeros(debug_stats):
    assert debug_stats["untouched_diff"][0] == 0 and debug_stats["untouched_diff"][5] == 6


@pytest.mark.caffe
def test_exact_norms_are_float_totals_like_net_backward(debug_stats):
    # Three parameters of L1 |x| sum inf (overflowed): Caffe's float total is inf, and so is ours.
    l1_data, l1_diff, l2_data, l2_diff = debug_stats["norms"]
    assert float(l1_data) == math.inf and float(l2_data) == math.inf


def test_numpy_norms_are_float64_totals():
    parts = [summarize(np.array([3.0, -4.0], np.float32), with_sumsq=True)] * 2
    assert param_norms(parts, parts) == (14.0, 14.0, math.sqrt(50.0), math.sqrt(50.0))
