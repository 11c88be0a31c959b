"""Rule thresholds: dataclass defaults here, then the user's YAML file, then `--set rule.key=value`.

configs/default.yaml is the documented copy of these defaults (a test keeps the two equal). Everything
is validated once, here at the edge, so rules read typed fields and never re-parse strings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional

import yaml

from ..core.errors import HarnessError
from .findings import HALT, OFF, WARN

POLICIES = (HALT, WARN, OFF)


def _fraction(default: float):
    return field(default=default, metadata={"min": 0.0, "max": 1.0})


def _positive(default):
    return field(default=default, metadata={"min_exclusive": 0})


def _iters(default: int):
    return field(default=default, metadata={"min": 1})


@dataclass(frozen=True)
class NonfiniteConfig:
    policy: str = HALT


@dataclass(frozen=True)
class DeadConfig:
    policy: str = HALT
    zero_fraction: float = _fraction(0.99)      # share of exact zeros in a rectifier's top
    patience_iters: int = _iters(5)             # consecutive iterations at or above it


@dataclass(frozen=True)
class DeadPathConfig:
    policy: str = HALT
    chain_layers: int = _iters(3)               # consecutive layers printing a top of exact zeros


@dataclass(frozen=True)
class NoGradientConfig:
    policy: str = HALT
    patience_iters: int = _iters(5)             # consecutive iterations with an exactly-zero diff


@dataclass(frozen=True)
class VanishingConfig:
    policy: str = WARN
    min_mean_abs: float = _positive(1e-7)       # mean |param diff| below this (but not 0) is vanishing
    min_depth_ratio: float = _positive(1e-4)    # bottom-most / top-most weight diff below this
    patience_iters: int = _iters(5)             # consecutive iterations either must hold


@dataclass(frozen=True)
class ExplodingConfig:
    policy: str = WARN
    max_mean_abs: float = _positive(1e6)        # mean |param diff| above this is exploding
    growth_factor: float = _positive(1000.0)    # L2 of all param diffs vs its minimum over the window
    window_iters: int = _iters(10)
    loss_growth_factor: float = _positive(1000.0)   # from a log: a loss vs its first observed value


@dataclass(frozen=True)
class BatchnormEmptyStatsConfig:
    policy: str = HALT          # nothing to tune: all three statistics blobs exactly 0 after forward


@dataclass(frozen=True)
class WeightsNotLoadedConfig:
    policy: str = WARN          # renaming a layer to re-initialise it (a new head) is a legitimate recipe


@dataclass(frozen=True)
class SaturatedSoftmaxLossConfig:
    policy: str = HALT
    saturated_loss: float = _positive(87.3365)      # -log(FLT_MIN): Caffe's clamp of the true-class probability
    max_rel_error: float = _fraction(1e-4)          # |loss - saturated_loss| / saturated_loss still counted as pinned
    patience_iters: int = _iters(3)                 # consecutive observed iterations pinned


@dataclass(frozen=True)
class ChanceLossConfig:
    policy: str = WARN
    max_rel_distance: float = _fraction(0.05)       # |mean loss - ln K| / ln K counted as chance level
    window_iters: int = _iters(50)                  # observed iterations the mean is taken over
    trained_fraction: float = _fraction(0.5)        # a loss below this share of ln K means the net had learnt


@dataclass(frozen=True)
class LossHeadConfig:
    policy: str = WARN
    growth_factor: float = _positive(100.0)         # a loss output this many times its first value has exploded


@dataclass(frozen=True)
class IntermittentNanDisplayConfig:
    policy: str = WARN          # nothing to tune: finite vs non-finite


@dataclass(frozen=True)
class NoLearningSignalConfig:
    policy: str = HALT
    patience_iters: int = _iters(3)                 # consecutive iterations with zero losses and zero diffs


@dataclass(frozen=True)
class LrOutOfRangeConfig:
    policy: str = WARN
    min_lr: float = _positive(1e-10)                # below this no weight moves in float32
    max_lr: float = _positive(1.0)                  # above this SGD steps overshoot at any sane gradient scale


@dataclass(frozen=True)
class CrosscheckConfig:
    """Not a rule: how often Caffe prints the debug lines the cross-check compares (docs/train.md)."""
    every_iters: int = _iters(100)                  # by default at least every this many iterations


@dataclass(frozen=True)
class Config:
    nonfinite: NonfiniteConfig = NonfiniteConfig()
    dead: DeadConfig = DeadConfig()
    dead_path: DeadPathConfig = DeadPathConfig()
    no_gradient: NoGradientConfig = NoGradientConfig()
    vanishing: VanishingConfig = VanishingConfig()
    exploding: ExplodingConfig = ExplodingConfig()
    batchnorm_empty_stats: BatchnormEmptyStatsConfig = BatchnormEmptyStatsConfig()
    weights_not_loaded: WeightsNotLoadedConfig = WeightsNotLoadedConfig()
    saturated_softmax_loss: SaturatedSoftmaxLossConfig = SaturatedSoftmaxLossConfig()
    chance_loss: ChanceLossConfig = ChanceLossConfig()
    loss_head: LossHeadConfig = LossHeadConfig()
    intermittent_nan_display: IntermittentNanDisplayConfig = IntermittentNanDisplayConfig()
    no_learning_signal: NoLearningSignalConfig = NoLearningSignalConfig()
    lr_out_of_range: LrOutOfRangeConfig = LrOutOfRangeConfig()
    crosscheck: CrosscheckConfig = CrosscheckConfig()

    def to_dict(self) -> dict:
        return asdict(self)


def _sections() -> list:
    return [f.name for f in fields(Config)]


def _allowed(names) -> str:
    return ", ".join(names)


def _coerce(value, kind: type, where: str, key: str):
    # YAML 1.1 reads `1e-7` (no dot) as a string, and --set values always arrive as strings.
    if kind is str:
        if isinstance(value, str):
            return value
    elif not isinstance(value, bool):
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
        elif kind is float and isinstance(value, (int, float)):
            return float(value)
        elif kind is int and isinstance(value, int):
            return value
    wanted = {str: "a string", int: "an integer", float: "a number"}[kind]
    raise HarnessError(f"{where}: {key} must be {wanted}, got {value!r}")


def _check_range(value, metadata: dict, where: str, key: str) -> None:
    if "min" in metadata and value < metadata["min"]:
        raise HarnessError(f"{where}: {key} must be >= {metadata['min']}, got {value}")
    if "max" in metadata and value > metadata["max"]:
        raise HarnessError(f"{where}: {key} must be <= {metadata['max']}, got {value}")
    if "min_exclusive" in metadata and value <= metadata["min_exclusive"]:
        raise HarnessError(f"{where}: {key} must be > {metadata['min_exclusive']}, got {value}")


def _apply(config: Config, rule: str, key: str, value, where: str) -> Config:
    sections = _sections()
    if rule not in sections:
        raise HarnessError(f"{where}: unknown rule '{rule}'; allowed rules: {_allowed(sections)}")
    section = getattr(config, rule)
    known = {f.name: f for f in fields(section)}
    if key not in known:
        raise HarnessError(f"{where}: unknown key '{rule}.{key}'; allowed keys for {rule}: {_allowed(known)}")
    spec = known[key]
    kind = type(spec.default)
    if key == "policy" and value is False:
        value = OFF         # YAML 1.1 reads an unquoted `off` as false
    value = _coerce(value, kind, where, f"{rule}.{key}")
    if key == "policy" and value not in POLICIES:
        raise HarnessError(f"{where}: {rule}.policy must be one of {_allowed(POLICIES)}, got {value!r}")
    _check_range(value, spec.metadata, where, f"{rule}.{key}")
    return replace(config, **{rule: replace(section, **{key: value})})


def _read_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except OSError as error:
        raise HarnessError(f"config file {path}: cannot be read ({error.strerror})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        place = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise HarnessError(f"config file {path}{place}: not valid YAML: {problem}") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"config file {path}: expected a mapping of rules ({_allowed(_sections())}), "
                           f"got {type(data).__name__}")
    return data


def overrides_from_cli(pairs) -> dict:
    """The `--set RULE.KEY=VALUE` options of train and parse, as the overrides `load` takes."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or "." not in key:
            raise HarnessError(f"--set {pair!r}: expected RULE.KEY=VALUE, e.g. --set dead.zero_fraction=0.95.")
        result[key.strip()] = value.strip()
    return result


def load(path: Optional[str], overrides: Optional[dict] = None) -> Config:
    """Defaults, then the YAML file at `path` (if any), then `overrides` {"rule.key": "value"}."""
    config = Config()
    if path is not None:
        where = f"config file {path}"
        for rule, section in _read_yaml(path).items():
            if not isinstance(section, dict):
                if rule not in _sections():
                    raise HarnessError(f"{where}: unknown rule '{rule}'; allowed rules: {_allowed(_sections())}")
                raise HarnessError(f"{where}: '{rule}' must be a mapping of keys, got {section!r}")
            for key, value in section.items():
                config = _apply(config, str(rule), str(key), value, where)
    for dotted, value in (overrides or {}).items():
        where = f"--set {dotted}={value}"
        rule, dot, key = dotted.partition(".")
        if not dot:
            raise HarnessError(f"{where}: expected rule.key=value; allowed rules: {_allowed(_sections())}")
        config = _apply(config, rule, key, value, where)
    return config
