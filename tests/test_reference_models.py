"""BVLC's reference models under `harness train`, as a Caffe user runs them from CAFFE_ROOT: unchanged but
for batch size and iteration count (tests/reference_data.py), on small LMDBs made by Caffe's own tools.
Each must finish cleanly, with every debug line Caffe prints equal to the harness's value as glog prints
it. The big models are the slow tier: `pytest -m slow` (not part of `make test`)."""
import collections
import json
import re
from pathlib import Path

import pytest

from harness.core.records import BlobStat, ParamNorms
from harness.core.store import iter_run_records
from harness_run import harness, verdict
from reference_data import MODELS, make_caffe_root, without_opencv

pytestmark = pytest.mark.caffe

FAST = ["lenet", "lenet_adam", "lenet_rmsprop", "lenet_adadelta", "lenet_multistep", "lenet_consolidated",
        "lenet_auto", "autoencoder", "cifar10_quick"]
SLOW = ["autoencoder_adadelta", "autoencoder_adagrad", "autoencoder_nesterov", "cifar10_full", "cifar10_full_sigmoid",
        "cifar10_full_sigmoid_bn", "alexnet", "googlenet", "resnet50", "mobilenet_v2"]   # CaffeNet: below

# Warnings that are right, and may come (BVLC's LeNet solvers set no random_seed: each run starts from
# other weights); the runs still finish, with no anomaly.
# - lenet_rmsprop: Caffe's RMSProp starts its mean square at 0, so its first update moves every weight by
#   about base_lr / sqrt(1 - rms_decay) = 0.07 whatever the gradient's size; LeNet's loss jumps from 2.3
#   to ~60 (caffe.log shows it).
# - mobilenet_v2: at batch 2 its first layers' gradients are ~1e5 times the loss head's (the L2 of all
#   parameter gradients is ~6e5 at iteration 0), so SGD at base_lr 0.045 throws the weights to ~1e12 in
#   one update.
EXPECTED_WARNINGS = {"lenet_rmsprop": {"exploding"}, "mobilenet_v2": {"exploding"}}

# What glog printed: `[Forward] Layer L, top blob B data: X`, `... param blob K data: X`, `[Backward] ...`,
# and the norms line. The value as text: the harness's float must print the same.
DEBUG_LINE = re.compile(r"\] +\[(Forward|Backward)\] Layer (.+), (top blob |bottom blob |param blob )(.+) (?:data|diff): (\S+)$")
NORMS_LINE = re.compile(r"All net params \(data, diff\): L1 norm = \((\S+), (\S+)\); L2 norm = \((\S+), (\S+)\)$")


@pytest.fixture(scope="session")
def caffe_root(tmp_path_factory):
    if without_opencv():
        pytest.skip(without_opencv())
    return make_caffe_root(tmp_path_factory.mktemp("caffe_root"))


def train(caffe_root, name: str, run_dir, *extra, env=None):
    model = MODELS[name]
    return harness("train", model.solver, "--max-iter", model.iterations, "--run-dir", run_dir, "--quiet",
                   "--no-html", *extra, cwd=caffe_root / model.cwd, env=env)


def printed_by_caffe(run_dir) -> tuple:
    """(debug lines, norms lines) of caffe.log as multisets of what was printed."""
    lines, norms = collections.Counter(), collections.Counter()
    for line in (run_dir / "caffe.log").read_text().splitlines():
        m = DEBUG_LINE.search(line)
        if m:
            phase, layer, kind, blob, value = m.groups()
            lines[(phase.lower(), layer, "param blob " + blob if kind == "param blob " else blob, value)] += 1
            continue
        m = NORMS_LINE.search(line)
        if m:
            norms[m.groups()] += 1
    return lines, norms


def printed_by_harness(run_dir) -> tuple:
    """The same multisets from the records, each value formatted as glog formats a float. Caffe prints the
    norms line only on the iterations it displays (the effective solver's display: the cross-check's sample)."""
    display = int(re.search(r"(?m)^display: (\d+)$", (run_dir / "solver.prototxt").read_text()).group(1))
    lines, norms = collections.Counter(), collections.Counter()
    for record in iter_run_records(run_dir):
        if isinstance(record, BlobStat) and record.printed:
            assert not record.overflow
            lines[(record.phase, record.layer, record.blob, f"{record.mean_abs:.6g}")] += 1
        elif isinstance(record, ParamNorms) and record.iteration % display == 0:
            norms[tuple(f"{v:.6g}" for v in (record.l1_data, record.l1_diff, record.l2_data, record.l2_diff))] += 1
    return lines, norms


def assert_clean_and_exact(result, run_dir, name) -> dict:
    assert result.returncode == 0, result.stderr
    outcome = verdict(run_dir)
    assert outcome["status"] == "ok" and outcome["anomaly"] is None, outcome["anomaly"]
    warnings = {w["kind"] for w in outcome["warnings"]}
    assert warnings <= EXPECTED_WARNINGS.get(name, set()), [w["message"] for w in outcome["warnings"]]
    check = outcome["crosscheck"]
    assert check["method"] == "exact" and check["statistics"] == "caffe"
    assert check["compared"] > 0 and check["mismatched"] == 0, check["mismatches"][:3]
    assert check["unmatched_log_lines"] == 0 and check["unmatched_harness_values"] == 0
    assert check["max_rel_error"] == 0.0
    # And independently of the cross-check's code: the very text of every line, both ways.
    caffe_lines, caffe_norms = printed_by_caffe(run_dir)
    harness_lines, harness_norms = printed_by_harness(run_dir)
    assert caffe_lines == harness_lines
    assert caffe_norms == harness_norms and caffe_norms
    # BVLC's solvers say `solver_mode: GPU`; the run says that it trained on the CPU instead, and why.
    changes = {c["setting"]: c for c in json.loads((run_dir / "run.json").read_text())["solver_changes"]}
    assert changes["debug_info"]["effective"] == "true"
    if "solver_mode: GPU" in Path(json.loads((run_dir / "run.json").read_text())["solver"]).read_text():
        assert (changes["solver_mode"]["yours"], changes["solver_mode"]["effective"]) == ("GPU", "CPU")
    return outcome


@pytest.mark.parametrize("name", FAST)
def test_reference_model_trains_with_an_exact_crosscheck(caffe_root, tmp_path, name):
    assert_clean_and_exact(train(caffe_root, name, tmp_path / "run"), tmp_path / "run", name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_big_reference_model_trains_with_an_exact_crosscheck(caffe_root, tmp_path, name):
    assert_clean_and_exact(train(caffe_root, name, tmp_path / "run"), tmp_path / "run", name)


@pytest.mark.slow
def test_caffenet_fc6_and_the_norms_lines_are_exact(caffe_root, tmp_path):
    # fc6's weights are 37.7M floats: Caffe's float sum of them is 4e-4 off an accurate one, yet the harness
    # prints what Caffe prints.
    run_dir = tmp_path / "run"
    assert_clean_and_exact(train(caffe_root, "caffenet", run_dir, "--crosscheck", "every"), run_dir, "caffenet")
    caffe_lines, caffe_norms = printed_by_caffe(run_dir)
    fc6 = {key for key in caffe_lines if key[1] == "fc6" and key[2].startswith("param blob")}
    assert {(phase, blob) for phase, _, blob, _ in fc6} == {("forward", "param blob 0"), ("forward", "param blob 1"),
                                                            ("backward", "param blob 0"), ("backward", "param blob 1")}
    assert sum(caffe_norms.values()) == MODELS["caffenet"].iterations   # one norms line per iteration
