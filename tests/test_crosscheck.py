import math

import pytest

from harness.log.crosscheck import CrossCheck, as_glog_prints, rel_tolerance
from harness.core.records import BlobStat, ParamNorms


def stat(value, layer="ip1", blob="ip1", iteration=0, printed=True, overflow=False, count=100):
    return BlobStat(iteration, "train", 0, "forward", layer, blob, "top", value, count=count, overflow=overflow,
                    printed=printed)


def test_values_within_glog_precision_match_in_either_arrival_order():
    check = CrossCheck()
    check.add_log(stat(0.123457))
    check.add_harness(stat(0.12345678))
    check.add_harness(stat(2.0, layer="ip2", blob="ip2"))
    check.add_log(stat(2.00001, layer="ip2", blob="ip2"))
    summary = check.summary()
    assert summary["compared"] == 2 and summary["mismatched"] == 0
    assert 0 < summary["max_rel_error"] < 1e-5
    assert summary["unmatched_log_lines"] == summary["unmatched_harness_values"] == 0


def test_a_real_difference_is_a_mismatch_with_its_place():
    check = CrossCheck()
    check.add_log(stat(1.0, iteration=3))
    check.add_harness(stat(1.1, iteration=3))
    summary = check.summary()
    assert summary["mismatched"] == 1
    assert summary["mismatches"][0]["iteration"] == 3 and summary["mismatches"][0]["layer"] == "ip1"


def test_nan_matches_nan_and_overflow_is_not_a_mismatch():
    check = CrossCheck()
    check.add_log(stat(math.nan))
    check.add_harness(stat(math.nan))
    check.add_log(stat(math.inf, layer="ip2", blob="ip2"))
    check.add_harness(stat(1e37, layer="ip2", blob="ip2", overflow=True))
    summary = check.summary()
    assert summary["mismatched"] == 0 and summary["overflowed"] == 1


def test_inf_against_a_finite_value_without_overflow_is_a_mismatch():
    check = CrossCheck()
    check.add_log(stat(math.inf))
    check.add_harness(stat(5.0))
    assert check.summary()["mismatched"] == 1


def test_unprinted_harness_values_are_not_expected_in_the_log():
    check = CrossCheck()
    check.add_harness(stat(1.0, printed=False))
    check.add_log(stat(1.0, layer="other", blob="x"))
    summary = check.summary()
    assert summary["unmatched_harness_values"] == 0 and summary["unmatched_log_lines"] == 1


def test_param_norms_compare_all_four_numbers_and_l2_overflows_first():
    check = CrossCheck()
    check.add_log(ParamNorms(0, "train", 0, 10.0, 1.0, math.inf, 0.5))
    check.add_harness(ParamNorms(0, "train", 0, 10.00001, 1.0, 2e19, 0.5))   # 2e19 ** 2 > FLT_MAX
    summary = check.summary()
    assert summary["compared"] == 4 and summary["mismatched"] == 0 and summary["overflowed"] == 1


def exact_check() -> CrossCheck:
    return CrossCheck(statistics="caffe")


def test_exact_values_match_as_glog_prints_them_and_nothing_else_does():
    check = exact_check()
    caffe_float = 0.0123456789                     # the harness's value: Caffe's own float
    check.add_log(stat(0.0123457))                 # what glog printed (6 significant digits)
    check.add_harness(stat(caffe_float))
    check.add_log(stat(0.0123457, layer="ip2", blob="ip2"))
    check.add_harness(stat(0.0123458, layer="ip2", blob="ip2"))   # one unit in the last printed digit
    summary = check.summary()
    assert summary["method"] == "exact" and summary["statistics"] == "caffe"
    assert summary["compared"] == 2 and summary["mismatched"] == 1
    assert summary["mismatches"][0]["layer"] == "ip2"
    assert summary["max_rel_tolerance"] == 0.0


def test_glog_formatting_is_six_significant_digits():
    assert as_glog_prints(37.123449) == 37.1234 and as_glog_prints(1.5e-7) == 1.5e-07
    assert as_glog_prints(123456789.0) == 1.23457e+08 and as_glog_prints(0.5) == 0.5


def test_a_norms_line_mismatch_is_reported_where_it_is():
    # The norms line's key has five fields, a blob line's six: both must summarize.
    check = exact_check()
    check.add_log(ParamNorms(2, "train", 0, 10.0, 1.0, 3.0, 0.5))
    check.add_harness(ParamNorms(2, "train", 0, 10.0, 1.5, 3.0, 0.5, count=1000))
    summary = check.summary()
    assert summary["mismatched"] == 1
    assert summary["mismatches"][0] == {"iteration": 2, "net": "train", "pass": 0, "phase": "backward",
                                        "layer": "All net params", "blob": "l1_diff", "log": 1.0,
                                        "harness": 1.5, "rel_error": 1 / 3}


def test_tolerance_grows_with_the_blob_as_float32_summation_error_does():
    assert rel_tolerance(100) == pytest.approx(5e-6 + 68 * 2 ** -24)
    assert 0.07 < rel_tolerance(37_748_736) < 0.071          # CaffeNet's fc6 weights
    # Caffe's OpenBLAS float sum of 40M Gaussian weights is 4.7e-4 off: within the tolerance at that size
    # only, not for a small blob.
    for count, matched in ((40_000_000, 0), (1000, 1)):
        check = CrossCheck(statistics="numpy")
        check.add_log(stat(1.0))
        check.add_harness(BlobStat(0, "train", 0, "forward", "ip1", "ip1", "top", 1.00047, count=count))
        assert check.summary()["mismatched"] == matched
        assert check.summary()["method"] == "tolerance"
