"""`harness <command>`: each command lives in its own module with `add_arguments(parser)` and `run(args)`."""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.errors import HarnessError

# command -> (module, one-line help). Modules are imported only for the command that runs.
COMMANDS = {
    "train": ("harness.commands.train", "train a Caffe solver under the harness and judge it"),
    "parse": ("harness.commands.parse", "interpret an existing Caffe log offline"),
    "check": ("harness.commands.check", "run net folders with expected.yaml and compare verdicts"),
    "reproduce": ("harness.commands.reproduce", "replay a recorded run to an iteration, verify it, dump every blob"),
    "doctor": ("harness.commands.doctor", "show the Caffe build and run a tiny solver"),
    "report": ("harness.commands.report", "draw a run directory as one self-contained report.html"),
    "export": ("harness.commands.export", "export a run's records as CSV tables or TensorBoard event files"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="harness", description="Train real Caffe nets and find where and why training breaks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:   # only the command that runs is imported: start-up stays quick
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    try:
        return args._run(args)
    except HarnessError as error:
        print(f"harness {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        # A failure to read or write one of our own files (disk full, permissions): say which, no traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"harness {args.command}: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
