import math

from harness.log.crosscheck import CrossCheck
from harness.core.records import BlobStat, ParamNorms


def stat(value, layer="ip1", blob="ip1", iteration=0, printed=True, overflow=False):
    return BlobStat(iteration, "train", 0, "forward", layer, blob, "top", value, overflow=overflow, printed=printed)


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
