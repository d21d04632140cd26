"""Run configuration: one YAML file describes a whole run, validated up front.

The YAML is checked against the dataclasses below before any work starts; every
unknown, mistyped or out-of-range key is reported at once with its dotted path
(`train.epochs: expected a number, got 'five'`). The command line only overrides keys
(`--set train.epochs=5`), and overrides are validated the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..data.config import DataConfig
from ..text.segmentation import segmenter_problem

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: invalid config:\n  " + "\n  ".join(problems))


def checked(default: Any, check) -> Any:
    """A field whose values must pass `check`: it returns True, or False (out of range)
    or the reason as a string. None always passes where the type allows it."""
    return field(default=default, metadata={"check": check})


@dataclass
class SegmenterConfig:
    name: str = "underthesea"
    settings: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[str]:
        problem = segmenter_problem(self.name, self.settings)
        if problem is None:
            return []
        return [f"segmenter.{'settings' if problem.startswith('segmenter ') else 'name'}: {problem}"]


@dataclass
class TinyBackboneConfig:
    """The offline PhoBERT-architecture backbone, built from the training text. A model
    trained from scratch needs its own learning rate, epochs and time budget: these replace
    `train.learning_rate`/`train.epochs`/`train.max_minutes` whenever the tiny backbone is used."""

    vocab_size: int = checked(3000, lambda v: v >= 100)
    hidden_size: int = checked(256, lambda v: v > 0)
    num_hidden_layers: int = checked(2, lambda v: v > 0)
    num_attention_heads: int = checked(4, lambda v: v > 0)
    intermediate_size: int = checked(512, lambda v: v > 0)
    word_shapes: bool = True  # word shape classes as token_type_ids (capitalisation, digits...)
    lowercase: bool = False  # lower-case words for the tokenizer (case then comes from the shapes)
    learning_rate: float = checked(2e-3, lambda v: v > 0)
    # the learning rates (this one and model.feature_learning_rate) suit this many training
    # sentences (the five articles' folds); above it they are scaled by sqrt(reference / n)
    reference_sentences: int | None = checked(60, lambda v: v > 0)
    epochs: float = checked(40, lambda v: v >= 0)  # 0: the warm-start feature CRF alone
    # an opt-in wall-clock safety stop; off by default, since a run stopped by the clock
    # depends on how busy the machine was: the budget of a seeded run is its epochs
    max_minutes: float | None = checked(None, lambda v: v > 0)


@dataclass
class ModelConfig:
    name_or_path: str = "vinai/phobert-base-v2"  # hub id, local directory, or "tiny"
    fallback: Literal["tiny", "error"] = "tiny"
    head: Literal["softmax", "crf"] = "crf"  # crf: linear-chain CRF over word emissions
    # hashed word features (identity, affixes, shape, ±2 window) added to the emissions;
    # auto: on for the tiny offline backbone, off for a pretrained one
    word_features: Literal["auto", True, False] = "auto"
    feature_buckets: int = checked(1 << 18, lambda v: v >= 2)
    feature_learning_rate: float = checked(1e-2, lambda v: v > 0)  # the feature table's own rate
    # share of words whose encoder emissions are dropped in training, so the features also tag alone
    emission_dropout: float = checked(0.3, lambda v: 0 <= v < 1)
    # fit the feature table (and CRF transitions) alone first, as a feature CRF (feature_crf.py)
    feature_warm_start: bool = True
    feature_l2: float = checked(0.2, lambda v: v >= 0)  # its L2 penalty on the summed loss, as crfsuite's c2
    max_length: int = checked(256, lambda v: 8 <= v <= 4096)
    tiny: TinyBackboneConfig = field(default_factory=TinyBackboneConfig)

    def problems(self) -> list[str]:
        found = []
        tiny = self.tiny
        if tiny.num_attention_heads and tiny.hidden_size % tiny.num_attention_heads:
            found.append(f"model.tiny.num_attention_heads: {tiny.num_attention_heads} does not divide "
                         f"model.tiny.hidden_size {tiny.hidden_size}")
        if self.name_or_path == "tiny" and tiny.epochs == 0 and not self.feature_warm_start:
            found.append("model.tiny.epochs: 0 trains nothing unless model.feature_warm_start is true")
        return found


@dataclass
class TrainConfig:
    epochs: float = checked(10, lambda v: v > 0)
    batch_size: int = checked(16, lambda v: v > 0)
    eval_batch_size: int = checked(32, lambda v: v > 0)
    learning_rate: float = checked(5e-5, lambda v: v > 0)
    weight_decay: float = 0.01
    warmup_ratio: float = checked(0.1, lambda v: 0 <= v < 1)
    gradient_accumulation_steps: int = checked(1, lambda v: v > 0)
    early_stopping_patience: int = checked(5, lambda v: v >= 0)
    max_minutes: float | None = checked(None, lambda v: v > 0)  # opt-in wall-clock safety stop (see tiny)
    bf16: Literal["auto", True, False] = "auto"
    num_threads: int | None = checked(None, lambda v: v > 0)  # torch threads; None: torch's default


@dataclass
class PretrainConfig:
    """Masked-language-model warm-up of the backbone before fine-tuning, on the training
    text plus unlabelled UTF-8 text files (domain-adaptive pre-training for a real
    PhoBERT; the from-scratch tiny backbone needs it more). epochs 0 turns it off."""

    epochs: float = checked(0, lambda v: v >= 0)
    texts: list[str] = field(default_factory=list, metadata={
        "check": lambda v: next((f"{path}: no such file" for path in v if not Path(path).is_file()), True)})
    mlm_probability: float = checked(0.15, lambda v: 0 < v < 1)
    learning_rate: float | None = checked(None, lambda v: v > 0)  # None: the fine-tuning learning rate
    batch_size: int = checked(32, lambda v: v > 0)


@dataclass
class OutputConfig:
    dir: str = "models"
    checkpoints: str = "build/checkpoints"
    save_total_limit: int = checked(2, lambda v: v >= 1)


@dataclass
class RunConfig:
    # `{backbone}` becomes the backbone actually trained (`phobert-base-v2`, or `tiny` after a
    # fallback), so a model directory never claims a backbone it does not hold
    run_name: str = checked("{backbone}-asean", lambda v: bool(v) and "/" not in v and not v.startswith(".")
                            and v.isprintable() and v == v.strip() and len(v.encode()) <= 200
                            and "{" not in v.replace("{backbone}", "") and "}" not in v.replace("{backbone}", ""))

    def export_name(self, backbone: str) -> str:
        return self.run_name.replace("{backbone}", backbone)
    seed: int = checked(42, lambda v: 0 <= v < 2**32 or "must be between 0 and 2**32 - 1")
    data: DataConfig = field(default_factory=DataConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("NoneType", "null")


def _convert(value: Any, tp: Any, path: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, problems)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            trial: list[str] = []
            converted = _convert(value, option, path, trial)
            if not trial:
                return converted
        problems.append(f"{path}: expected {' or '.join(_describe(o) for o in options)}, got {value!r}")
        return None
    if origin is Literal:
        if value in typing.get_args(tp) and type(value) in {type(a) for a in typing.get_args(tp)}:
            return value
        problems.append(f"{path}: expected {_describe(tp)}, got {value!r}")
        return None
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return None
        return [_convert(v, item, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {value!r}")
            return None
        return {str(k): _convert(v, value_tp, f"{path}.{k}", problems) for k, v in value.items()}
    if tp is Any:
        return value
    if tp in (float, int) and isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path}: expected a finite number, got {value!r}")
        return None
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads `3e-4` (no dot) as a string
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is type(None) and value is None:
        return None
    problems.append(f"{path}: expected {_describe(tp)}, got {value!r}")
    return None


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{prefix or 'config'}: expected a mapping, got {data!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    checks = {f.name: f.metadata["check"] for f in dataclasses.fields(cls) if "check" in f.metadata}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
            problems.append(f"{path}: unknown key{hint}; known: {', '.join(names)}")
            continue
        converted = _convert(value, hints[key], path, problems)
        check = checks.get(key)
        verdict = check(converted) if converted is not None and check is not None else True
        if verdict is not True:  # False, or the reason as a string
            problems.append(f"{path}: {verdict or f'value {value!r} is out of range'}")
        kwargs[key] = converted
    built = cls(**{k: v for k, v in kwargs.items() if v is not None or k in _nullable(cls)})
    if hasattr(built, "problems"):  # checks that involve several fields of one section
        problems += built.problems()
    return built


def _nullable(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {name for name, tp in hints.items() if type(None) in typing.get_args(tp)}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML lets the last win)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(text: str):
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=5` -> (["train", "epochs"], 5); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError("--set", [f"{text!r}: expected KEY=VALUE, for example train.epochs=5"])
    try:
        value = read_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError("--set", [f"{key.strip()}: the value {raw!r} is not valid YAML ({reason})"]) from None
    return key.strip().split("."), value


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or the defaults), apply `KEY=VALUE` overrides, validate."""
    source = str(path) if path else "defaults"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = read_yaml(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, [f"cannot read: {exc}"]) from exc
        if not isinstance(raw, dict):
            raise ConfigError(source, ["the top level must be a mapping"])
    for override in overrides:
        keys, value = parse_override(override)
        node = raw
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return config_from_dict(raw, source + (" with overrides" if overrides else ""))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config given as a mapping (as `to_dict` writes it); errors name `source`."""
    problems: list[str] = []
    config = _build(RunConfig, raw, "", problems)
    if problems:
        raise ConfigError(source, problems)
    return config
