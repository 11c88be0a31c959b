"""`harness reproduce RUN --iter K`: replay a recorded run to iteration K, check it is the same run, and
keep every blob at the point it stopped.

Caffe's .solverstate holds neither the data layers' position nor the random generators' state, so a
replay that starts from a snapshot feeds different batches and draws different dropout masks. The only
exact replay is from iteration 0 with the recorded random_seed: that is what this does, and says so.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf import text_format

from ..core import rundir, store
from ..core.caffe_proto import caffe_pb2
from ..core.errors import HarnessError
from ..run import caffe_dir, provenance, supervisor
from ..run.replay import compare
from .progress import Progress

_PIECES = ("run.json", "worker.json", "solver.prototxt", "config.yaml", "verdict.json")


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run directory written by `harness train`")
    parser.add_argument("--iter", type=int, required=True, dest="iteration", metavar="K",
                        help="the iteration to stop in (the halting iteration of a halted run, or earlier)")
    parser.add_argument("--layer", help="stop right after this train-net layer in iteration K")
    parser.add_argument("--phase", choices=("forward", "backward"), help="with --layer: after its forward or backward")
    parser.add_argument("--dump", action="store_true", help="write every blob's data and diff and every parameter to dump.npz")
    parser.add_argument("--interactive", action="store_true",
                        help="open a Python prompt with net, solver, blobs and params bound where it stopped")
    parser.add_argument("--out", help="where to write the replay (default RUN/reproduce-K)")
    parser.add_argument("--quiet", action="store_true")


def _check_run_dir(run_dir: Path) -> tuple:
    missing = [name for name in _PIECES if not (run_dir / name).is_file()]
    if not store.exists(run_dir):
        missing.append(f"its records ({store.DIR}/)")
    if missing:
        raise HarnessError(f"{run_dir} is not a complete run directory of `harness train`: it lacks "
                           f"{', '.join(missing)}. Reproduce needs the run directory as train left it.")
    run_info = json.loads((run_dir / "run.json").read_text())
    changes = provenance.changed_data_files(run_info.get("data_files", {}))
    if changes:
        listed = "; ".join(f"{path} ({why})" for path, why in changes[:5])
        raise HarnessError(f"the data the run read has changed since it was recorded: {listed}. A replay on other "
                           "data is not the same run: restore the files (or regenerate them exactly) and retry.")
    return run_info, json.loads((run_dir / "worker.json").read_text()), json.loads((run_dir / "verdict.json").read_text())


def _notes(run_info: dict, build) -> list:
    notes = ["replaying from iteration 0: Caffe's .solverstate keeps neither the data position nor the random "
             "generators' state, so only a replay from the start with the recorded seed is exact"]
    if run_info.get("random_seed") is None:
        notes.append("the solver sets no random_seed, so Caffe seeded itself from the clock: random fillers, "
                     "DummyData and Dropout differ in the replay, and it cannot be exact")
    recorded = run_info.get("caffe_build", {}).get("libcaffe_sha256")
    if recorded and recorded != provenance.caffe_build(build).get("libcaffe_sha256"):
        notes.append("this Caffe build differs from the one that recorded the run: small numeric differences are possible")
    if run_info.get("gpu") is not None:
        notes.append("GPU runs are not bit-reproducible in every layer (docs/gpu.md): expect small differences")
    return notes


def _replay_solver(run_dir: Path, out: Path) -> Path:
    param = text_format.Merge((run_dir / "solver.prototxt").read_text(), caffe_pb2().SolverParameter())
    (out / "snapshots").mkdir(exist_ok=True)
    param.snapshot_prefix = str(out / "snapshots" / "snapshot")
    path = out / "solver.prototxt"
    path.write_text(f"# replay of {run_dir / 'solver.prototxt'}\n" + text_format.MessageToString(param))
    return path


def run(args) -> int:
    run_dir = Path(args.run).resolve()
    if not run_dir.is_dir():
        raise HarnessError(f"{run_dir}: no such run directory.")
    run_info, spec, original = _check_run_dir(run_dir)
    # The replay runs on the Caffe the run was recorded with: a user's build (`train --caffe`) again.
    build = caffe_dir.use(run_info.get("caffe_build", {}).get("path"))
    anomaly = original.get("anomaly")
    last = anomaly["iteration"] if anomaly else original["iterations_run"] - 1
    if not 0 <= args.iteration <= last:
        raise HarnessError(f"--iter {args.iteration} is outside the recorded run, which covers iterations 0 to {last}"
                           f"{' (it halted there)' if anomaly else ''}.")
    if args.phase and not args.layer:
        raise HarnessError("--phase needs --layer: it says after which pass of that layer to stop.")
    out = rundir.make(args.out or str(run_dir / f"reproduce-{args.iteration}"), "")
    notes = _notes(run_info, build)
    if not args.quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)

    stop_at = {"iteration": args.iteration, "layer": args.layer, "phase": args.phase}
    replay_spec = dict(spec, solver=str(_replay_solver(run_dir, out)), run_dir=str(out), stop_at=stop_at,
                       dump=str(out / "dump.npz") if args.dump else None, interactive=args.interactive)
    progress = Progress(args.iteration + 1, args.quiet)
    outcome = supervisor.run(replay_spec, out, spec["python_paths"], progress, interactive=args.interactive)
    progress.done()
    if outcome.status == "error":
        raise HarnessError(f"the replay failed: {outcome.caffe_error}. Caffe's log of the replay: {out / 'caffe.log'}.")

    comparison = compare(store.iter_run_records(run_dir), store.iter_run_records(out), args.iteration)
    halt = next((f for f in outcome.findings if f.severity == "halt"), None)
    same_halt = None
    if anomaly and args.iteration == anomaly["iteration"] and not args.layer:
        same_halt = halt is not None and all(getattr(halt, f) == anomaly[f] for f in ("kind", "iteration", "phase", "layer", "blob"))
    result = {
        "run": str(run_dir), "target": stop_at, "stopped": outcome.status,
        "stopped_at": ({f: getattr(halt, f) for f in ("iteration", "phase", "layer", "blob")} if halt else None),
        "identical": comparison.first_divergence is None, "records_compared": comparison.compared,
        "iterations_identical": comparison.iterations, "first_divergence": comparison.first_divergence,
        "same_halt_as_original": same_halt, "dump": replay_spec["dump"], "dump_summary": outcome.dump_rows,
        "notes": notes,
    }
    (out / "reproduce.json").write_text(json.dumps(result, indent=1, default=str))
    if not args.quiet:
        print(_summary(result, out), file=sys.stderr)
    return 0 if result["identical"] and same_halt is not False else 1


def _summary(result: dict, out: Path) -> str:
    lines = ["", f"replay written to {out}"]
    if result["identical"]:
        lines.append(f"identical: {result['records_compared']} records over {result['iterations_identical']} "
                     "iterations match the original exactly")
    else:
        d = result["first_divergence"]
        lines.append(f"DIVERGED at {d['key']}: original {d['original']}, replay {d['replayed']}")
    if result["stopped_at"]:
        s = result["stopped_at"]
        same = {True: "same as the original run", False: "NOT the original's halt", None: ""}[result["same_halt_as_original"]]
        lines.append(f"stopped by the rules at iteration {s['iteration']}, {s['phase']}, layer {s['layer']}, blob {s['blob']} {same}")
    else:
        lines.append(f"stopped at the target {result['target']}")
    if result["dump"]:
        bad = [row for row in result["dump_summary"] if row["nonfinite"]]
        lines.append(f"dump: {result['dump']} ({len(result['dump_summary'])} arrays; np.load() opens it)")
        for row in (bad or result["dump_summary"])[:12]:
            lines.append(f"  {row['key']:<40} shape {row['shape']}  mean|x| {row['mean_abs']:.4g}  non-finite {row['nonfinite']}")
    return "\n".join(lines)
