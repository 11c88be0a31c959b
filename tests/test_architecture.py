"""The package layout of docs/architecture.md, enforced: every module sits in a stage package, and imports
point only from commands down to the stages and from later stages to earlier ones, never back."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

# What each package may import (besides itself), as docs/architecture.md draws it.
ALLOWED = {
    "core": set(),
    "log": {"core"},
    "rules": {"core"},
    "run": {"core", "log", "rules"},
    "report": {"core", "rules"},
    "testing": {"core", "rules"},
    "commands": {"core", "log", "rules", "run", "report", "testing"},
}
TOP_LEVEL_FILES = {"__init__.py", "__main__.py"}


def modules():
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def package_of(path: Path, root: Path = PACKAGE) -> str:
    return path.relative_to(root).parts[0]


def harness_imports(path: Path, root: Path = PACKAGE):
    """(line, imported module) for every import of a harness module, top-level or inside a function."""
    here = ["harness", *path.relative_to(root).with_suffix("").parts]
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (package[:len(package) - node.level + 1] if node.level else [])
            module = base + (node.module.split(".") if node.module else [])
            names = [".".join(module + [alias.name]) if not node.module or node.level else ".".join(module)
                     for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "harness":
                yield node.lineno, name


def test_every_module_lives_in_a_stage_package():
    stray = [p.name for p in PACKAGE.glob("*.py") if p.name not in TOP_LEVEL_FILES]
    assert stray == [], f"modules outside the stage packages: {stray} (see docs/architecture.md)"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


def wrong_imports(path: Path, root: Path = PACKAGE) -> list:
    own = package_of(path, root)
    wrong = []
    for line, name in harness_imports(path, root):
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if target != own and target not in ALLOWED[own]:
            wrong.append(f"line {line}: {name}")
    return wrong


@pytest.mark.parametrize("path", [p for p in modules() if p.parent != PACKAGE],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_pipeline(path):
    own = package_of(path)
    assert wrong_imports(path) == [], f"harness.{own} may import only {sorted(ALLOWED[own] | {own})}"


def test_only_the_run_stage_touches_pycaffe():
    """The parser, the rules and the report run without Caffe: they are tested on recorded logs."""
    for path in modules():
        if package_of(path) in ("run", "commands") or path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "caffe" for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] != "caffe", path


def test_the_checker_sees_a_wrong_import(tmp_path):
    """The rule above is not vacuous: imports of the report from the run stage are caught, relative,
    absolute and inside a function alike, and an allowed one is not."""
    probe = tmp_path / "harness" / "run" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ..report import page\nimport harness.report.text\nfrom . import stats\n"
                     "def f():\n    from ..report.collect import collect\nfrom ..rules import verdict\n")
    assert wrong_imports(probe, tmp_path / "harness") == [
        "line 1: harness.report.page", "line 2: harness.report.text", "line 5: harness.report.collect.collect"]
