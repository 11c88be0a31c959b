"""`scripts/setup.sh --caffe-source DIR`: Blob.debug_stats added to a user's Caffe source tree, which the user then
rebuilds. Applied here to copies of a minimal tree of BVLC's real files (tests/caffe_source/README.md); no
build runs in these tests (docs/forks.md has a fork patched, rebuilt and trained on the exact path)."""
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.run.provenance import caffe_prefix
from harness_run import ROOT

TREE = Path(__file__).resolve().parent / "caffe_source"
ADDITIONS = ROOT / "scripts" / "caffe-additions"
PYCAFFE = Path("python/caffe/_caffe.cpp")
ADDED = sorted(path.relative_to(ADDITIONS) for path in ADDITIONS.rglob("*") if path.is_file())


def setup_source(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--caffe-source", str(tree)],
                          capture_output=True, text=True, timeout=60)


def contents(tree: Path) -> dict:
    """path -> (bytes, mtime) of every file in the tree."""
    return {path.relative_to(tree): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(tree.rglob("*")) if path.is_file()}


@pytest.fixture
def tree(tmp_path) -> Path:
    copy = tmp_path / "caffe"
    shutil.copytree(TREE, copy)
    return copy


@pytest.mark.caffe
def test_the_patched_pycaffe_is_the_one_setups_own_build_compiled(tree):
    result = setup_source(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in ADDED:
        assert (tree / path).read_bytes() == (ADDITIONS / path).read_bytes()
    # The cache keeps the pycaffe source beside the build made from Debian's tree by the same script.
    assert (tree / PYCAFFE).read_text() == (caffe_prefix() / PYCAFFE).read_text()
    assert "Blob.debug_stats bound" in result.stdout
    assert "make all pycaffe" in result.stdout and "cmake ." in result.stdout   # how to rebuild, either way


def test_applying_it_twice_changes_nothing(tree):
    assert setup_source(tree).returncode == 0
    before = contents(tree)
    again = setup_source(tree)
    assert again.returncode == 0, again.stderr
    assert contents(tree) == before                        # not one byte, not one mtime: make rebuilds nothing
    assert "already bound" in again.stdout and "already there" in again.stdout


def test_an_earlier_version_of_the_edits_is_replaced_not_doubled(tree):
    assert setup_source(tree).returncode == 0
    current = (tree / PYCAFFE).read_text()
    # The edits as they first were: the #include after sgd_solvers.hpp, a shorter function, another file body.
    include = '#include "caffe/util/debug_stats.hpp"\n'
    earlier = current.replace(include, "").replace('#include "caffe/sgd_solvers.hpp"\n',
                                                   '#include "caffe/sgd_solvers.hpp"\n' + include)
    earlier = earlier.replace("                        s.elements.zeros, s.elements.nonfinite);\n",
                              "                        0, 0);\n")
    (tree / PYCAFFE).write_text(earlier)
    (tree / ADDED[-1]).write_text("// Added by caffe-harness (an earlier version)\n")
    result = setup_source(tree)
    assert result.returncode == 0, result.stderr
    assert (tree / PYCAFFE).read_text() == current
    assert (tree / ADDED[-1]).read_bytes() == (ADDITIONS / ADDED[-1]).read_bytes()
    assert "replaced" in result.stdout


def test_a_folder_that_is_not_a_caffe_source_tree_is_refused(tmp_path):
    result = setup_source(tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path} is not a Caffe source tree: it has no include/caffe/blob.hpp" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_pycaffe_the_patch_does_not_fit_is_named_and_nothing_is_written(tree):
    text = (tree / PYCAFFE).read_text().replace("bp::object Blob_Reshape(", "bp::object BlobReshape(")
    (tree / PYCAFFE).write_text(text)
    before = contents(tree)
    result = setup_source(tree)
    assert result.returncode == 1
    assert f"the patch does not apply to {tree / PYCAFFE}" in result.stderr and "Blob_Reshape" in result.stderr
    assert "\n" not in result.stderr.strip()          # one paragraph
    assert contents(tree) == before


def test_a_file_of_the_trees_own_at_an_added_path_is_not_replaced(tree):
    own = tree / "src" / "caffe" / "util" / "debug_stats.cpp"
    own.parent.mkdir(parents=True)
    own.write_text("// this fork's own debug statistics\n")
    before = contents(tree)
    result = setup_source(tree)
    assert result.returncode == 1
    assert f"{own} exists and is not caffe-harness's" in result.stderr
    assert contents(tree) == before
