"""The two ways to the statistics on one net with a 40M-element weight blob (CaffeNet's fc6 is 37.7M):
Caffe's own numbers compare exactly; numpy's (the path of a Caffe without Blob.debug_stats, forced here
with HARNESS_STATS=numpy) differ from Caffe's float32 BLAS sum by more than the old fixed 1e-4, and stay
inside the tolerance derived from the blob's size."""
import os

import pytest

from harness.log.crosscheck import rel_tolerance
from harness_run import harness, verdict, write_net

pytestmark = pytest.mark.caffe

BIG_NET = """name: "big"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 3 }
    shape { dim: 1 dim: 4000 } shape { dim: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 10000 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "net.prototxt"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: 2\ndisplay: 1\nrandom_seed: 11\n'
WEIGHTS = 40_000_000


@pytest.fixture(scope="module")
def solver(tmp_path_factory):
    return write_net(tmp_path_factory.mktemp("big") / "net", BIG_NET, SOLVER)


def test_numpy_statistics_need_and_get_a_tolerance_by_blob_size(solver, tmp_path):
    run_dir = tmp_path / "run"
    result = harness("train", solver, "--run-dir", run_dir, "--quiet", "--no-html",
                     env=dict(os.environ, HARNESS_STATS="numpy"))
    assert result.returncode == 0, result.stderr
    check = verdict(run_dir)["crosscheck"]
    assert check["method"] == "tolerance" and check["statistics"] == "numpy"
    assert check["mismatched"] == 0 and check["unmatched_log_lines"] == check["unmatched_harness_values"] == 0
    assert check["max_rel_error"] > 1e-4                # over the old fixed tolerance: float32 summation error
    assert check["max_rel_tolerance"] >= rel_tolerance(WEIGHTS) > check["max_rel_error"]


@pytest.mark.slow   # the fast tier's nets show it too; this one at 40M elements
def test_caffes_own_statistics_match_exactly(solver, tmp_path):
    run_dir = tmp_path / "run"
    result = harness("train", solver, "--run-dir", run_dir, "--quiet", "--no-html")
    assert result.returncode == 0, result.stderr
    check = verdict(run_dir)["crosscheck"]
    assert check["method"] == "exact" and check["statistics"] == "caffe"
    assert check["compared"] > 20 and check["mismatched"] == 0 and check["max_rel_error"] == 0.0
