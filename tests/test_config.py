"""Rule thresholds: defaults, configs/default.yaml, the user's file and --set overrides."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.rules import config
from harness.core.errors import HarnessError

DEFAULT_YAML = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def test_the_documented_yaml_equals_the_python_defaults():
    documented = yaml.safe_load(DEFAULT_YAML.read_text())
    assert documented == config.Config().to_dict()
    assert config.load(str(DEFAULT_YAML)) == config.Config()


def test_no_file_gives_the_defaults():
    defaults = config.load(None)
    assert defaults.dead.zero_fraction == 0.99 and defaults.nonfinite.policy == "halt"
    assert defaults.vanishing.policy == "warn" and defaults.exploding.policy == "warn"


def test_a_partial_file_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("dead:\n  patience_iters: 3\nvanishing:\n  min_mean_abs: 1e-9\n  policy: off\n")
    loaded = config.load(str(path), {"dead.zero_fraction": "0.95", "nonfinite.policy": "warn",
                                     "dead.patience_iters": "7"})
    assert loaded.dead.patience_iters == 7 and loaded.dead.zero_fraction == 0.95
    assert loaded.vanishing.min_mean_abs == 1e-9 and loaded.vanishing.policy == "off"
    assert loaded.nonfinite.policy == "warn"
    assert loaded.to_dict()["dead"] == {"policy": "halt", "zero_fraction": 0.95, "patience_iters": 7}


def test_an_empty_file_is_the_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert config.load(str(path)) == config.Config()


@pytest.mark.parametrize("text, words", [
    ("dead:\n  zero_frac: 0.9\n", ["dead.zero_frac", "zero_fraction", "patience_iters", "policy"]),
    ("deadd:\n  policy: off\n", ["deadd", "nonfinite", "no_gradient", "exploding"]),
    ("dead:\n  patience_iters: 2.5\n", ["dead.patience_iters", "integer"]),
    ("dead:\n  zero_fraction: 1.5\n", ["dead.zero_fraction", "<= 1.0"]),
    ("nonfinite:\n  policy: stop\n", ["nonfinite.policy", "halt, warn, off"]),
    ("dead: 3\n", ["'dead' must be a mapping"]),
    ("- dead\n", ["expected a mapping"]),
])
def test_file_errors_name_the_file_the_key_and_the_allowed_ones(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(HarnessError) as caught:
        config.load(str(path))
    assert str(path) in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_bad_yaml_says_where(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("dead:\n  policy: [halt\n")
    with pytest.raises(HarnessError, match=rf"{path}:\d+:\d+: not valid YAML"):
        config.load(str(path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(HarnessError, match="missing.yaml"):
        config.load(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("overrides, words", [
    ({"dead.zero_fraction": "lots"}, ["--set dead.zero_fraction=lots", "a number"]),
    ({"dead": "off"}, ["--set dead=off", "rule.key=value"]),
    ({"exploding.window": "5"}, ["exploding.window", "window_iters"]),
    ({"vanishing.min_mean_abs": "0"}, ["vanishing.min_mean_abs", "> 0"]),
])
def test_override_errors(overrides, words):
    with pytest.raises(HarnessError) as caught:
        config.load(None, overrides)
    for word in words:
        assert word in str(caught.value)
