"""`harness export RUN`: a run directory's records as CSV tables (--csv), TensorBoard event files
(--tensorboard) or JSON lines (--jsonl, the records.jsonl of docs/records.md); the writers are
harness/report/export.py."""
from __future__ import annotations

from pathlib import Path

from ..core import store
from ..core.errors import HarnessError
from ..report.collect import iter_records, load_train_net, load_verdict, rectifier_layers
from ..report.export import write_csv, write_jsonl, write_tensorboard


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run directory of `harness train` or `harness parse`")
    parser.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard event files into DIR")
    parser.add_argument("--csv", metavar="DIR", help="write one CSV table per record kind into DIR")
    parser.add_argument("--jsonl", metavar="FILE", help="write the records as JSON lines, one record a line, into "
                                                        "FILE (- for standard output)")


def run(args) -> int:
    if not (args.tensorboard or args.csv or args.jsonl):
        raise HarnessError("nothing to export: give --tensorboard DIR, --csv DIR, --jsonl FILE, or several")
    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise HarnessError(f"{run_dir} is not a directory: give the run directory of `harness train` or "
                           "`harness parse`")
    if not store.exists(run_dir):
        raise HarnessError(f"{run_dir} holds no records ({store.DIR}/ does not exist): nothing to export")
    load_verdict(run_dir)   # a folder that is no run directory fails here, with a clear message
    if args.csv:
        for path in write_csv(iter_records(run_dir), Path(args.csv)):
            print(path)
    if args.tensorboard:
        rectifiers = rectifier_layers(load_train_net(run_dir))
        print(write_tensorboard(iter_records(run_dir), Path(args.tensorboard), rectifiers))
    if args.jsonl:
        written = write_jsonl(iter_records(run_dir), None if args.jsonl == "-" else Path(args.jsonl))
        if written is not None:
            print(written)
    return 0
