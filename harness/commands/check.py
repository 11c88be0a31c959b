"""`harness check DIR...`: run every net folder that holds an `expected.yaml` under `harness train`, judge its
logs, and compare each verdict with what the file pins; a table of the nets and the differences. This is
how the zoo in prototxt/ is kept honest without pytest; with pytest the plugin (harness/testing/plugin.py)
collects the same folders as test items. Both run nets through harness.testing.netfolder: the format of
expected.yaml is in harness/testing/expected.py and docs/zoo.md.
"""
from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import HarnessError
from ..run import gpu
from ..testing.expected import expected_summary, summary
from ..testing.netfolder import LIVE, NetFolder, NetRun, find_nets
from ..testing.training import blas_env, blas_threads


def add_arguments(parser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="a net folder with expected.yaml, or a folder with such folders below it (e.g. prototxt/)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="nets to run at once (default 1), each Caffe run with cores / N BLAS threads")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run directories (under runs/check-<UTC time>/) instead of deleting them")
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                        help="give up on a net after this long (default 600)")
    parser.add_argument("--caffe-binary", action="store_true",
                        help="also train each net with the plain `caffe` tool and judge its log with `harness parse`")
    parser.add_argument("--gpu", type=int, metavar="N",
                        help="train on GPU N (`harness train --gpu N`, `caffe train -gpu N`) against the same pins")


def run(args) -> int:
    nets = [NetFolder.load(folder) for folder in find_nets(args.dirs)]   # a bad expected.yaml stops all
    names = [net.name for net in nets]
    if len(set(names)) != len(names):
        raise HarnessError("two net folders share a name; check them in separate runs.")
    if args.jobs < 1:
        raise HarnessError("--jobs must be at least 1.")
    if args.gpu is not None:
        gpu.require_gpu(args.gpu)               # one refusal up front instead of one per net
    if args.keep:
        root = Path("runs") / ("check-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
        root.mkdir(parents=True, exist_ok=True)
        results = _check_all(nets, root, args)
        print(f"run directories kept in {root}")
    else:
        with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
            results = _check_all(nets, Path(tmp), args)
    failed = [(net, judgements) for net, judgements in results if any(not j.passed for j in judgements)]
    for net, judgements in failed:
        for judgement in judgements:
            if not judgement.passed:
                print(f"\n{judgement.explain(net)}")
    print(f"\n{len(results) - len(failed)} of {len(results)} nets as expected.")
    return 1 if failed else 0


def _check_all(nets, root: Path, args) -> list:
    """(net, its judgements) for every net, run `args.jobs` at a time with the cores shared out among them."""
    env = blas_env(blas_threads(args.jobs))
    sources = NetFolder.sources(args.caffe_binary)
    done = []

    def one(net: NetFolder):
        net_run = NetRun(net, root / net.name, args.timeout, env, args.gpu)
        judgements = [net_run.judge(source) for source in sources]
        if args.keep:    # a kept failure gets its report.html; a deleted one would not need it
            judgements = [j if j.passed else net_run.draw_report(j) for j in judgements]
        done.append(net)
        result = "as expected" if all(j.passed for j in judgements) else "DIFFERS"
        seconds = sum(j.seconds for j in judgements)
        print(f"[{len(done)}/{len(nets)}] {net.name}: {result} ({seconds:.1f} s)", file=sys.stderr, flush=True)
        return net, judgements

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, nets))
    print(_table(results, sources[1:]))
    return results


def _table(results, log_sources) -> str:
    header = ("net", "expected", "got", "iters", "seconds", "cross-check", *(f"from {s}" for s in log_sources))
    rows = [header]
    for net, judgements in results:
        live = next(j for j in judgements if j.source == LIVE)
        verdict = live.verdict or {}
        check = verdict.get("crosscheck") or {}
        crosscheck = f"{check['compared']}/{check['mismatched']}" if "compared" in check else "-"
        judged = [summary(j.verdict) if j.verdict is not None else "-" for j in judgements if j.source != LIVE]
        mark = "  " if all(j.passed for j in judgements) else "X "
        rows.append((mark + net.name, expected_summary(net.expected), summary(live.verdict),
                     str(verdict.get("iterations_run", "-")), f"{live.seconds:.1f}", crosscheck, *judged))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
