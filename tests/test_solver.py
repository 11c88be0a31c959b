from pathlib import Path

import pytest

from harness.run import solver
from harness.core.errors import HarnessError

NET = 'name: "n"\nlayer { name: "d" type: "HDF5Data" top: "x" hdf5_data_param { source: "list.txt" batch_size: 2 } }\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_paths_fall_back_to_the_solver_folder_and_say_so(tmp_path, monkeypatch):
    write(tmp_path / "nets" / "net.prototxt", NET)
    write(tmp_path / "nets" / "list.txt", f"{tmp_path / 'a.h5'}\n")
    write(tmp_path / "a.h5", "")
    solver_path = write(tmp_path / "nets" / "solver.prototxt", 'net: "net.prototxt"\nbase_lr: 0.1\n')
    monkeypatch.chdir(tmp_path)
    loaded = solver.load(str(solver_path))
    source, net = loaded.nets["train"]
    assert source == (tmp_path / "nets" / "net.prototxt").resolve()
    assert net.layer[0].hdf5_data_param.source == str((tmp_path / "nets" / "list.txt").resolve())
    assert any("relative to" in note for note in loaded.notes)


def test_effective_solver_forces_debug_info_and_absolute_paths(tmp_path, monkeypatch):
    write(tmp_path / "net.prototxt", NET)
    write(tmp_path / "list.txt", "a.h5\n")
    write(tmp_path / "a.h5", "")
    solver_path = write(tmp_path / "solver.prototxt", 'net: "net.prototxt"\ndisplay: 100\nmax_iter: 50\n')
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path, net_files, _ = solver.write_effective(solver.load(str(solver_path)), run_dir, solver.Overrides(display=1, max_iter=7))
    assert net_files == {"train": str(run_dir / "net.prototxt")}
    text = path.read_text()
    assert "debug_info: true" in text and "display: 1" in text and "max_iter: 7" in text
    assert f'net: "{run_dir / "net.prototxt"}"' in text
    assert str(tmp_path / "list.txt") in (run_dir / "net.prototxt").read_text()


def test_syntax_error_names_file_line_and_column(tmp_path):
    bad = write(tmp_path / "solver.prototxt", 'net: "x"\nbase_lr 0.1\n')
    with pytest.raises(HarnessError, match=r"solver\.prototxt:2:\d+"):
        solver.load(str(bad))


def test_missing_solver_and_missing_net(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HarnessError, match="no such file"):
        solver.load(str(tmp_path / "absent.prototxt"))
    solver_path = write(tmp_path / "solver.prototxt", 'net: "missing.prototxt"\n')
    with pytest.raises(HarnessError, match="missing.prototxt' does not exist"):
        solver.load(str(solver_path))


def test_solver_without_a_net(tmp_path):
    solver_path = write(tmp_path / "solver.prototxt", "base_lr: 0.1\n")
    with pytest.raises(HarnessError, match="names no net"):
        solver.load(str(solver_path))


def test_hdf5_list_naming_missing_files(tmp_path, monkeypatch):
    write(tmp_path / "net.prototxt", NET)
    write(tmp_path / "list.txt", "gone.h5\n")
    solver_path = write(tmp_path / "solver.prototxt", 'net: "net.prototxt"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HarnessError, match=r"list.txt.*layer 'd'.*'gone.h5'"):
        solver.load(str(solver_path))


def test_every_change_to_the_users_solver_is_listed_with_its_reason(tmp_path, monkeypatch):
    write(tmp_path / "net.prototxt", NET)
    write(tmp_path / "list.txt", "a.h5\n")
    write(tmp_path / "a.h5", "")
    # As BVLC writes its solvers (examples/mnist/lenet_solver.prototxt).
    solver_path = write(tmp_path / "solver.prototxt", 'net: "net.prototxt"\ndisplay: 100\nmax_iter: 10000\n'
                        'snapshot: 5000\nsnapshot_prefix: "examples/mnist/lenet"\nsolver_mode: GPU\n')
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _, _, changes = solver.write_effective(solver.load(str(solver_path)), run_dir, solver.Overrides(display=1))
    by_setting = {change.setting: change for change in changes}
    assert set(by_setting) == {"nets", "debug_info", "display", "snapshot", "snapshot_after_train",
                               "snapshot_prefix", "solver_mode"}
    assert by_setting["solver_mode"].as_text() == (
        "solver_mode: GPU -> CPU (the harness trains on the CPU unless given --gpu N)")
    assert (by_setting["display"].yours, by_setting["display"].effective) == ("100", "1")
    assert by_setting["snapshot_prefix"].yours == '"examples/mnist/lenet"'
    assert by_setting["snapshot_prefix"].effective == f'"{run_dir / "snapshots" / "snapshot"}"'
    assert by_setting["nets"].yours == 'net: "net.prototxt"'
    # With --gpu N the GPU the user asked for is what runs: no change to report.
    _, _, on_gpu = solver.write_effective(solver.load(str(solver_path)), run_dir, solver.Overrides(display=100, gpu=0))
    assert "solver_mode" not in {c.setting for c in on_gpu} and "display" not in {c.setting for c in on_gpu}
