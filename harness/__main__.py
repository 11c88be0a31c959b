"""`python -m harness COMMAND`: the same as the `harness` command."""
import sys

from .commands.cli import main

sys.exit(main())
