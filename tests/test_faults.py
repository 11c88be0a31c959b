"""Faults and bad input (issue 11): each injected on a real run; each must end in a clear message, the
documented exit code, and records that are still whole. docs/faults.md tabulates these cases."""
import resource
import signal
from pathlib import Path

import pytest

from harness.core.records import BlobStat
from harness.core.store import iter_run_records
from harness_run import (ENDLESS_NET, ENDLESS_SOLVER, harness, iterations_done, start_harness, verdict,
                         wait_for_iterations, write_net)

pytestmark = pytest.mark.caffe


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_an_iteration_boundary_with_everything_written(tmp_path, signum, code):
    solver = write_net(tmp_path / "net")
    run_dir = tmp_path / "run"
    process = start_harness("train", solver, "--run-dir", run_dir, "--quiet")
    wait_for_iterations(run_dir, 3)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    result = verdict(run_dir)
    assert result["status"] == "interrupted"
    done = iterations_done(run_dir)
    assert done == list(range(len(done))) and result["iterations_run"] == len(done)
    snapshots = sorted(p.suffix for p in (run_dir / "snapshots").iterdir())
    assert snapshots == [".caffemodel", ".solverstate"]
    assert (run_dir / "report.md").is_file()


def _bad_input_cases(tmp_path: Path):
    """(name, argv after `harness`, text the message must contain)."""
    good = write_net(tmp_path / "good")
    cases = []

    def case(name, files, argv, expect):
        folder = tmp_path / name
        folder.mkdir()
        for file_name, text in files.items():
            (folder / file_name).write_text(text)
        cases.append((name, [a.format(dir=folder) for a in argv], expect.format(dir=folder)))

    solver = ["train", "{dir}/solver.prototxt"]
    case("solver_syntax", {"solver.prototxt": 'net: "net.prototxt"\nbase_lr 0.1\n', "net.prototxt": ENDLESS_NET},
         solver, "{dir}/solver.prototxt:2:")
    case("net_syntax", {"solver.prototxt": ENDLESS_SOLVER, "net.prototxt": "layer { name: 'x' type: \n"},
         solver, "{dir}/net.prototxt:2:")
    case("net_missing", {"solver.prototxt": ENDLESS_SOLVER}, solver, "net.prototxt' does not exist")
    case("solver_missing", {}, solver, "{dir}/solver.prototxt: no such file")
    case("unknown_layer", {"solver.prototxt": ENDLESS_SOLVER,
                           "net.prototxt": ENDLESS_NET.replace('type: "ReLU"', 'type: "Relu"')},
         solver + ["--run-dir", "{dir}/run"], "type 'Relu', which this Caffe build does not know. Did you mean 'ReLU'")
    case("no_net", {"solver.prototxt": "base_lr: 0.1\n"}, solver, "names no net")
    case("hdf5_missing", {"solver.prototxt": ENDLESS_SOLVER, "list.txt": "/nonexistent/a.h5\n",
                          "net.prototxt": 'layer { name: "d" type: "HDF5Data" top: "x" '
                                          'hdf5_data_param { source: "list.txt" batch_size: 2 } }\n'},
         solver, "'/nonexistent/a.h5'")
    case("bad_yaml", {"c.yaml": "dead: [unclosed\n"}, ["train", str(good), "--config", "{dir}/c.yaml"],
         "{dir}/c.yaml")
    case("unknown_config_key", {"c.yaml": "dead:\n  zero_fractoin: 0.5\n"},
         ["train", str(good), "--config", "{dir}/c.yaml"], "zero_fractoin")
    case("run_dir_unwritable", {"file": "x"}, ["train", str(good), "--run-dir", "{dir}/file/run"],
         "{dir}/file/run cannot be written")
    case("log_missing", {}, ["parse", "{dir}/caffe.log"], "{dir}/caffe.log: no such log file")
    return cases


def test_bad_input_gets_one_paragraph_naming_the_file_and_exit_2(tmp_path):
    failures = []
    for name, argv, expect in _bad_input_cases(tmp_path):
        result = harness(*argv, "--quiet", cwd=tmp_path)
        problems = []
        if result.returncode != 2:
            problems.append(f"exit {result.returncode}")
        if "Traceback" in result.stderr:
            problems.append("traceback")
        if expect not in result.stderr:
            problems.append(f"message lacks {expect!r}")
        if problems:
            failures.append(f"{name}: {', '.join(problems)}\n{result.stderr}")
    assert not failures, "\n\n".join(failures)


def test_file_size_limit_while_recording_stops_cleanly_with_earlier_records_intact(tmp_path):
    solver = write_net(tmp_path / "net")
    run_dir = tmp_path / "run"
    limit = 400_000   # bytes: a few dozen iterations of caffe.log

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = start_harness("train", solver, "--run-dir", run_dir, "--quiet", preexec_fn=limit_file_size)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "File too large" in stderr and (f"could not write {run_dir / 'records'} (" in stderr or "caffe.log" in stderr)
    done = iterations_done(run_dir)
    assert len(done) > 3 and done == list(range(len(done)))
    assert verdict(run_dir)["status"] == "error"


def test_records_reader_skips_a_truncated_last_row(tmp_path):
    solver = write_net(tmp_path / "net", solver=ENDLESS_SOLVER.replace("max_iter: 1000000", "max_iter: 5"))
    run_dir = tmp_path / "run"
    assert harness("train", solver, "--run-dir", run_dir, "--quiet").returncode == 0
    records = list(iter_run_records(run_dir))
    blobs, other = run_dir / "records" / "blobs.bin", run_dir / "records" / "other.jsonl"
    # Every BlobStat of a real run is a row (none fell back to JSON)
    assert '"record":"blob"' not in other.read_text()
    assert blobs.stat().st_size == 28 * sum(isinstance(r, BlobStat) for r in records)
    # A crash in the middle of the last blob row and of the last JSON line: both are skipped, nothing else.
    blobs.write_bytes(blobs.read_bytes()[:-10])
    other.write_text(other.read_text()[:-20])
    last_blob = max(i for i, r in enumerate(records) if isinstance(r, BlobStat))
    last_other = max(i for i, r in enumerate(records) if not isinstance(r, BlobStat))
    assert list(iter_run_records(run_dir)) == [r for i, r in enumerate(records) if i not in (last_blob, last_other)]
