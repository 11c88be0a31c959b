"""report.html: the aggregation behind the heatmaps and curves, the page from a synthetic run directory, and a
real failing zoo net rendered in headless Chromium (screenshot kept in test-artifacts/)."""
import base64
import json
import math
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from harness.report import collect as collect_module, page as report_page
from harness.report.collect import FINITE, INF, MISSING, NAN, ZERO, Cells, collect, column_width
from harness.core.netinfo import LayerInfo, NetInfo
from harness.core.records import BlobStat, IterationEnd, ParamNorms, TestResult, to_json
from harness_run import ROOT, harness

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def blob(iteration, layer, name, value, phase="forward", kind="top", pass_index=0, net="train", zeros=None):
    return BlobStat(iteration=iteration, net=net, pass_index=pass_index, phase=phase, layer=layer, blob=name,
                    kind=kind, mean_abs=value, zero_fraction=zeros)


def test_cells_bin_iterations_and_rank_nan_over_inf_over_finite_over_zero():
    cells = Cells(width=2)
    for iteration, value in enumerate([10.0, 1000.0, 0.0, 5.0, float("inf"), 1.0, float("nan"), float("inf"), 0.0]):
        cells.add(("fc", "fc"), iteration, value)
    values, categories = cells.matrix([("fc", "fc"), ("absent", "x")], cells.columns())
    assert categories[0].tolist() == [FINITE, FINITE, INF, NAN, ZERO]
    assert values[0, 0] == pytest.approx(2.0)            # the mean of log10 10 and log10 1000
    assert values[0, 1] == pytest.approx(math.log10(5))  # the zero does not pull the mean down
    assert categories[1].tolist() == [MISSING] * 5


def test_column_width_caps_the_heatmap_at_max_columns():
    assert column_width(3) == 1
    assert column_width(399) == 1
    assert column_width(400) == 2
    assert column_width(100_000) == 251
    assert (100_000 // column_width(100_000)) + 1 <= collect_module.MAX_COLUMNS


def test_collect_keeps_train_pass_0_in_net_order_and_rectifier_zero_shares():
    records = [
        blob(0, "relu", "fc", 0.5, zeros=0.4), blob(0, "fc", "fc", 1.0), blob(0, "fc", "param blob 0", 0.1, kind="param"),
        blob(0, "fc", "fc", 9.0, pass_index=1), blob(0, "fc", "fc", 9.0, net="test0"),
        blob(0, "relu", "fc", 0.01, phase="backward", kind="bottom"),
        ParamNorms(0, "train", 0, 1, 2, 3, 4.0), ParamNorms(0, "train", 1, 1, 2, 3, 8.0),
        IterationEnd(0, loss=2.3, smoothed_loss=2.3, outputs={"loss": 2.3, "accuracy": 0.1}, lr=0.01),
        TestResult(100, "test0", {"accuracy": 0.9}),
    ]
    net = NetInfo("n", layers=(LayerInfo("fc", "InnerProduct"), LayerInfo("relu", "ReLU")))
    data = collect(records, iterations=1, rectifiers={"relu"})
    assert data.rows(data.forward, net) == [("fc", "fc"), ("fc", "param blob 0"), ("relu", "fc")]
    assert data.rows(data.forward, None) == [("relu", "fc"), ("fc", "fc"), ("fc", "param blob 0")]  # first seen
    assert data.forward.matrix([("fc", "fc")], 1)[0][0, 0] == 0.0    # pass 0 only, train net only
    assert data.passes == 2
    assert list(data.dead.rows) == [("relu", "fc")]
    assert data.dead.matrix([("relu", "fc")], 1)[0][0, 0] == pytest.approx(0.4)
    assert data.grad_norm.values == [8.0]                            # the last pass holds the whole gradient
    assert "smoothed loss" not in data.train and data.train["accuracy"].values == [0.1]
    assert data.test["test0 accuracy"].steps == [100] and data.last_iteration == 100


def test_findings_go_to_the_heatmap_of_their_phase():
    assert collect_module.heatmap_of({"phase": "backward", "layer": "fc"}) == "backward"
    assert collect_module.heatmap_of({"phase": "update", "layer": "fc"}) == "forward"
    assert collect_module.heatmap_of({"phase": "forward", "net": "test0", "layer": "fc"}) is None
    assert collect_module.heatmap_of({"phase": "backward", "layer": "All net params"}) is None


def cell_grids(page: str) -> list:
    """The heatmaps' cell images (PNG inside the inline SVG), decoded: one list of (r, g, b) rows each."""
    grids = []
    for source in re.findall(r'<image[^>]*\shref="([^"]*)"', page):
        assert source.startswith("data:image/png;base64,"), source[:60]
        png = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC)
        chunks, at = {}, 8
        while at < len(png):
            size = int.from_bytes(png[at:at + 4], "big")
            chunks[png[at + 4:at + 8]] = chunks.get(png[at + 4:at + 8], b"") + png[at + 8:at + 8 + size]
            at += 12 + size
        width, height = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
        palette = [tuple(chunks[b"PLTE"][i:i + 3]) for i in range(0, len(chunks[b"PLTE"]), 3)]
        raw = zlib.decompress(chunks[b"IDAT"])
        rows = [raw[r * (width + 1):(r + 1) * (width + 1)] for r in range(height)]
        assert all(row[0] == 0 for row in rows)                    # filter "none" on every row
        grids.append([[palette[i] for i in row[1:]] for row in rows])
    return grids


def assert_figures_are_inline_svg(page: str, at_least: int) -> None:
    assert "<img" not in page                                      # nothing to fetch, no raster figures
    assert page.count("<svg") >= at_least
    assert len(cell_grids(page)) == page.count('class="heatmap')


def write_synthetic_run(run_dir: Path) -> None:
    """A parsed-log-like run dir: no nets.json, no run.json; fc blows up to NaN at iteration 3."""
    run_dir.mkdir()
    records = []
    for i in range(4):
        value = float("nan") if i == 3 else 10.0 ** (2 * i)
        records += [blob(i, "data", "data", 1.0), blob(i, "fc", "fc", value),
                    blob(i, "fc", "fc", value * 0.1 if i < 3 else float("inf"), phase="backward", kind="bottom"),
                    IterationEnd(i, loss=2.0 + i if i < 3 else float("nan"), lr=0.1),
                    ParamNorms(i, "train", 0, 1, 2, 3, 10.0 ** i)]
    (run_dir / "records.jsonl").write_text("".join(to_json(r) + "\n" for r in records))
    anomaly = {"kind": "nonfinite", "iteration": 3, "phase": "forward", "net": "train", "layer": "fc", "blob": "fc",
               "value": "nan", "message": "top blob fc of layer fc became <non-finite>", "suggestions": ["lower `base_lr`"],
               "rule": "nonfinite", "severity": "halt", "evidence": {"cause": "exploding"}, "thresholds": {}}
    verdict = {"status": "halted", "iterations_run": 3, "anomaly": anomaly, "warnings": [],
               "crosscheck": {"compared": 0, "mismatched": 0, "unmatched_log_lines": 0, "max_rel_error": 0.0},
               "caffe_error": None, "source": "log"}
    (run_dir / "verdict.json").write_text(json.dumps(verdict))
    (run_dir / "report.md").write_text("# caffe-harness report\n\n| iteration | loss |\n|---|---|\n| 3 | nan |\n")


def test_page_from_a_synthetic_run_is_self_contained(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir)
    page = report_page.write(run_dir).read_text()
    assert_figures_are_inline_svg(page, at_least=4)               # loss, norm, forward and backward heatmaps
    assert "fc · fc" in page and "data · data" in page              # rows named (layer · blob) without nets.json
    forward, backward = cell_grids(page)
    red, orange, white = (0xd5, 0x00, 0x00), (0xff, 0x98, 0x00), (0xff, 0xff, 0xff)
    assert [row[3] for row in forward] == [forward[0][3], red]      # fc's NaN at iteration 3; data stays finite
    assert forward[1][2] != forward[1][0] and forward[1][2] not in (red, orange, white)   # fc grows, in colour
    assert backward == [[backward[0][0], backward[0][1], backward[0][2], orange]]         # fc's diff: Inf at 3
    assert page.count('class="anomaly"') == 1 and page.count('class="nonfinite"') == 1   # the frame; loss's NaN
    assert "HALTED" in page and "nonfinite at iteration 3" in page
    assert "&lt;non-finite&gt;" in page and "<code>base_lr</code>" in page   # escaped, code spans kept
    assert "<table>" in page and "<td>nan</td>" in page            # report.md's table, as HTML
    assert "Not available for a parsed log" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)          # nothing fetched from elsewhere


def test_a_400_blob_net_over_100k_iterations_draws_every_row_in_a_small_page():
    from harness.report.figures import render_curves, render_heatmap
    width = column_width(100_000)
    cells = Cells(width)
    keys = [(f"layer{i // 2}", f"blob{i % 2}") for i in range(400)]
    for r, key in enumerate(keys):
        for column in range(100_000 // width):
            cells.add(key, column * width, 10.0 ** ((r + column) % 7 - 3))
    svg = render_heatmap(cells, keys, "log10 mean |data|", {"anomaly": None}, "forward")
    (grid,) = cell_grids(svg)
    assert len(grid) == 400 and len(grid[0]) == 100_000 // width       # one pixel per cell, every row
    assert all(f">layer{i // 2} · blob{i % 2}<" in svg for i in range(400))
    assert len(svg) < 300_000

    data = collect([IterationEnd(i, loss=50.0 if i == 54_321 else 1.0 + (i % 10) / 100, lr=0.1)
                    for i in range(100_000)], iterations=100_000)
    curves = render_curves(data, {})
    loss = re.search(r'<polyline class="series" points="([^"]*)"', curves).group(1).split()
    assert len(loss) <= 1000                                             # thinned ...
    assert min(float(point.split(",")[1]) for point in loss) < 40        # ... but the spike (top of the panel) kept
    assert len(curves) < 100_000


def test_report_command_prints_the_path_and_rejects_a_folder_that_is_no_run(tmp_path):
    run_dir = tmp_path / "run"
    write_synthetic_run(run_dir)
    result = harness("report", run_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(run_dir / "report.html")
    result = harness("report", tmp_path)
    assert result.returncode == 2 and "verdict.json does not exist" in result.stderr


# ---------------------------------------------------------------- a real failing net, in a browser

def chromium() -> str:
    """Chromium's path; installs Debian's package through scripts/install-test-tools.sh when missing."""
    if not shutil.which("chromium"):
        result = subprocess.run(["bash", str(ROOT / "scripts" / "install-test-tools.sh")], capture_output=True,
                                text=True, timeout=600)
        if not shutil.which("chromium"):
            pytest.skip(f"chromium is not installed and scripts/install-test-tools.sh could not install it: "
                        f"{(result.stderr or result.stdout).strip()[-300:]}")
    return shutil.which("chromium")


def browse(report: Path, *mode: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1400,3000", *mode, f"file://{report}"],
            capture_output=True, text=True, timeout=120)


@pytest.mark.caffe
def test_exploding_lr_report_renders_in_headless_chromium(tmp_path):
    run_dir = tmp_path / "run"
    result = harness("train", "prototxt/exploding_lr/solver.prototxt", "--run-dir", run_dir, "--quiet")
    assert result.returncode == 1, result.stderr                   # halted on NaN
    report = Path(harness("report", run_dir).stdout.strip())

    dom = browse(report, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "HALTED" in dom.stdout and "nonfinite at iteration 3" in dom.stdout
    assert "Training curves" in dom.stdout and "Forward: log10 mean |data|" in dom.stdout
    assert "Backward: log10 mean |diff|" in dom.stdout and "Dead fraction" in dom.stdout
    assert_figures_are_inline_svg(dom.stdout, at_least=5)
    assert "fc2 (InnerProduct) · fc2" in dom.stdout and "relu1 (ReLU) · fc1" in dom.stdout
    assert dom.stdout.count('class="anomaly"') == 1                # fc2's cell, in the forward map

    screenshot = tmp_path / "exploding_lr_report.png"
    shot = browse(report, f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_MAGIC) and screenshot.stat().st_size > 50_000
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copy(screenshot, artifacts / screenshot.name)
    shutil.copy(report, artifacts / "exploding_lr_report.html")


def test_axis_ticks_are_round_numbers_inside_the_range():
    from harness.report.drawing import number, ticks
    assert ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert ticks(0, 7, 6, integer=True) == [0, 2, 4, 6]
    assert ticks(3, 3, 5, integer=True) == [3, 4]                   # a single iteration still gets an axis
    assert [number(v) for v in ticks(0.0011, 0.0105, 5)] == ["0.002", "0.004", "0.006", "0.008", "0.01"]
    assert [number(v) for v in ticks(-1.3, 0.2, 3)] == ["-1", "-0.5", "0"]
    assert number(-0.0) == "0" and number(1.3862944) == "1.38629" and number(2e4) == "20000"
