"""`harness train SOLVER`: train under the harness, judge every iteration, and leave a run directory."""
from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import yaml

from ..core import netinfo, rundir
from ..core.errors import HarnessError
from ..core.records import IterationEnd
from ..core.store import iter_run_records
from ..rules import config as harness_config
from ..rules import verdict
from ..run import caffe_dir, gpu, observation, provenance, solver as solver_loader, stepping, supervisor
from ..report import text
from .progress import Progress


def add_arguments(parser) -> None:
    parser.add_argument("solver", help="the solver prototxt, as for `caffe train -solver`")
    parser.add_argument("--gpu", type=int, metavar="N", help="run on GPU N (default: CPU)")
    parser.add_argument("--caffe", metavar="DIR",
                        help=f"train with the Caffe build in DIR (its python/caffe, libcaffe and caffe tool; a fork "
                             f"with its own layers, say) instead of the harness's own; also ${caffe_dir.ENV}")
    parser.add_argument("--hooks", choices=stepping.MODES,
                        help="where the statistics are taken: after every layer (layers), once per iteration before "
                             "the update (solver) or after it (none); default auto, the finest the build offers "
                             f"(also ${stepping.HOOKS_ENV})")
    parser.add_argument("--weights", help="comma-separated .caffemodel files to start from (like caffe train -weights)")
    parser.add_argument("--snapshot", help="a .solverstate to resume from (like caffe train -snapshot)")
    parser.add_argument("--max-iter", type=int, help="override the solver's max_iter")
    parser.add_argument("--crosscheck", choices=solver_loader.CROSSCHECK_MODES,
                        help="which iterations Caffe prints its debug lines for, each cross-checked: sample (your "
                             "display interval, and at least every crosscheck.every_iters, 100; the default) or every "
                             "(the default with --hooks solver or none, where Caffe's lines are the only per-layer "
                             "witness); the harness computes its statistics and judges every iteration either way")
    parser.add_argument("--display", type=int, metavar="N",
                        help="let Caffe print its debug lines every N iterations exactly (instead of --crosscheck)")
    parser.add_argument("--snapshot-every", type=int, default=0, metavar="S",
                        help="also snapshot every S iterations (default: only on halt and at the end)")
    parser.add_argument("--config", help="YAML file with rule thresholds and policies (see configs/default.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="RULE.KEY=VALUE",
                        help="override one setting, e.g. --set dead.policy=warn (repeatable)")
    parser.add_argument("--run-dir", help="where to write the run (default runs/<UTC time>-<net name>)")
    parser.add_argument("--strict", action="store_true", help="fail the run if any debug line disagrees with the harness")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument("--no-html", action="store_true", help="skip report.html")


def run(args) -> int:
    build = caffe_dir.use(args.caffe)   # first: the solver's prototxt is read with the build's own caffe.proto
    hooks = args.hooks or os.environ.get(stepping.HOOKS_ENV) or stepping.AUTO
    if hooks not in stepping.MODES:
        raise HarnessError(f"{stepping.HOOKS_ENV}={hooks}: must be one of {', '.join(stepping.MODES)}.")
    config = harness_config.load(args.config, harness_config.overrides_from_cli(args.set))
    if args.gpu is not None:
        gpu.require_gpu(args.gpu)   # a CPU-only build or no usable GPU: say so before anything runs
    loaded = solver_loader.load(args.solver)
    train_net = loaded.nets["train"][1]
    display = _display(args, hooks, loaded.param.display, config.crosscheck.every_iters)
    run_dir = rundir.make(args.run_dir, train_net.name)
    overrides = solver_loader.Overrides(display=display, max_iter=args.max_iter,
                                        snapshot_every=args.snapshot_every, gpu=args.gpu)
    effective, net_files, changes = solver_loader.write_effective(loaded, run_dir, overrides)
    solver = solver_loader.solver_info(loaded)
    config_path = run_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    max_iter = args.max_iter if args.max_iter is not None else loaded.param.max_iter
    (run_dir / "run.json").write_text(json.dumps({
        "command": " ".join(shlex.quote(a) for a in sys.argv), "cwd": str(Path.cwd()),
        "solver": str(loaded.path), "effective_solver": str(effective),
        "nets": {role: str(src) for role, (src, _) in loaded.nets.items()},
        "path_notes": loaded.notes, "solver_changes": [asdict(change) for change in changes],
        "random_seed": solver.random_seed, "max_iter": max_iter,
        "display": display, "gpu": args.gpu, "weights": args.weights, "snapshot": args.snapshot,
        "snapshot_every": args.snapshot_every, "config": str(config_path),
        "data_files": provenance.data_files(net for _, net in loaded.nets.values()),
        "caffe_build": provenance.caffe_build(build),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=1))
    if not args.quiet:
        for note in loaded.notes:
            print(f"note: {note}", file=sys.stderr)
        for change in changes:
            print(f"changed: {change.as_text()}", file=sys.stderr)
        print(f"run directory: {run_dir}", file=sys.stderr)

    spec = {
        "solver": str(effective), "run_dir": str(run_dir), "config": str(config_path), "gpu": args.gpu,
        "weights": [w for w in (args.weights or "").split(",") if w], "snapshot": args.snapshot,
        "display": display, "python_paths": loaded.python_paths,
        "net_files": net_files,
        "net_sources": {role: str(source) for role, (source, _) in loaded.nets.items()},
        "solver_info": asdict(solver), "hooks": hooks,
    }
    progress = Progress(max_iter, args.quiet)
    outcome = None
    try:
        outcome = supervisor.run(spec, run_dir, loaded.python_paths, progress)
        progress.done()
        return finish(run_dir, outcome, solver, strict=args.strict, quiet=args.quiet, html=not args.no_html)
    except HarnessError:   # a message for the user, said by the command line
        raise
    except Exception as error:   # our own bug, after Caffe ran: the run still gets its verdict
        progress.done()
        return internal_error(run_dir, error, outcome)


def _display(args, hooks: str, user_display: int, every_iters: int) -> int:
    """The effective solver's display: --display N as given, else what --crosscheck samples. A read-back
    (--hooks solver|none) checks every iteration by default: it cannot tell in which layer a NaN appeared,
    and the finding then points to Caffe's line of that iteration (harness/run/observation.py)."""
    if args.display is None:
        mode = args.crosscheck or (solver_loader.EVERY if hooks in (stepping.SOLVER, stepping.NONE)
                                   else solver_loader.SAMPLE)
        return solver_loader.sampled_display(user_display, mode, every_iters)
    if args.display < 1:
        raise HarnessError(f"--display {args.display}: must be at least 1 (Caffe prints no debug line with 0).")
    if args.crosscheck == solver_loader.EVERY and args.display != 1:
        raise HarnessError(f"--display {args.display} and --crosscheck every contradict each other: every "
                           "iteration's lines need display 1. Give one of them.")
    return args.display


def internal_error(run_dir: Path, error: Exception, outcome) -> int:
    """verdict.json with status error, the traceback saved beside it, and a message instead of the traceback;
    caffe.log and the records stay as the supervisor left them."""
    saved = run_dir / "harness-traceback.txt"
    saved.write_text(traceback.format_exc())
    message = f"internal error of caffe-harness: {type(error).__name__}: {error}"
    if outcome is not None:
        iterations = outcome.iterations_run
    else:
        iterations = sum(isinstance(r, IterationEnd) for r in iter_run_records(run_dir))
    result = verdict.build("error", iterations, [], getattr(outcome, "crosscheck", None), None, source="live",
                           harness_error={"message": message, "traceback": str(saved)})
    verdict.write(run_dir / "verdict.json", result)
    print(f"harness train: {message}\nThis is a bug of the harness, not of your net; please report it with "
          f"{saved}. Caffe's log {run_dir / 'caffe.log'} and the records of the {iterations} completed "
          f"iteration(s) in {run_dir / 'records'} are kept; {run_dir / 'verdict.json'} says status "
          "error.", file=sys.stderr)
    return 2


def finish(run_dir: Path, outcome, solver, strict: bool, quiet: bool, html: bool) -> int:
    nets_path = run_dir / "nets.json"
    nets = ({name: netinfo.from_dict(d) for name, d in json.loads(nets_path.read_text()).items()}
            if nets_path.exists() else {})
    status = outcome.status
    if strict and outcome.crosscheck and outcome.crosscheck["mismatched"] and status == "ok":
        status = "error"
    build = observation.read(run_dir)
    findings = observation.qualify(outcome.findings, build, run_dir / "caffe.log")
    result = verdict.build(status, outcome.iterations_run, findings, outcome.crosscheck,
                           outcome.caffe_error, source="live", snapshot=outcome.snapshot,
                           signal=outcome.exit_signal, **({"caffe": build} if build else {}))
    verdict.write(run_dir / "verdict.json", result)
    text.write(run_dir, result, None, nets, solver)
    if html:
        from ..report import page   # markdown and the drawing: only when a page is drawn
        page.write_or_warn(run_dir, quiet)
    if not quiet:
        print(text.terminal_summary(result), file=sys.stderr)
    if status == "error":
        # Caffe's words end the first line as Caffe wrote them (often with their own full stop).
        print(f"harness train: Caffe stopped with an error running {solver.solver_path}: {result['caffe_error']}\n"
              f"Caffe's full log is {run_dir / 'caffe.log'}; the records of the {outcome.iterations_run} "
              f"completed iteration(s) are in {run_dir / 'records'}.", file=sys.stderr)
    if outcome.exit_signal:
        return 130 if outcome.exit_signal == "SIGINT" else 143
    return verdict.exit_code(result)
