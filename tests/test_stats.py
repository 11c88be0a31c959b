import math

import numpy as np
import pytest

from harness.core.records import FLT_MAX
from harness.run.stats import summarize


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
