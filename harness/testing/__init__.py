"""Net folders as regression tests: a folder with `expected.yaml` pins the verdict its solver must get, live and
judged from its logs. `netfolder` finds, runs and compares them (one implementation, for `harness check` and
the pytest plugin alike), `expected` reads the pins and compares a verdict with them, `training` runs `harness
train` in a subprocess and loads what it left, and `plugin` (entry point `pytest11`) makes them pytest items
and offers the `harness_run` fixture. No stage imports this package; `commands.check` does.
"""

EXPECTED_FILE = "expected.yaml"
