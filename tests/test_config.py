"""Config validation: every bad key is named with its dotted path."""

from pathlib import Path

import pytest

from training.train.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", ["default.yaml", "phobert-large.yaml", "tiny.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(CONFIGS / name)
    assert config.model.max_length == 256


def test_default_config_asks_for_the_real_phobert():
    config = load_config(CONFIGS / "default.yaml")
    assert config.model.name_or_path == "vinai/phobert-base-v2"
    assert config.model.fallback == "tiny"


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_keys_are_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "train:\n  epoch: 3\nmodell: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "run.yaml" in message
    assert "train.epoch: unknown key (did you mean train.epochs?)" in message
    assert "modell: unknown key (did you mean model?)" in message
    assert len(info.value.problems) == 2


def test_mistyped_and_out_of_range_values(tmp_path):
    path = write(tmp_path, "train:\n  epochs: five\n  learning_rate: -1\nmodel:\n  fallback: maybe\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = "\n".join(info.value.problems)
    assert "train.epochs: expected float, got 'five'" in problems
    assert "train.learning_rate: value -1 is out of range" in problems
    assert "model.fallback: expected one of 'tiny', 'error', got 'maybe'" in problems


def test_cli_overrides_are_validated_the_same_way():
    config = load_config(CONFIGS / "tiny.yaml", ["train.batch_size=4", "model.tiny.epochs=2", "data.label_map.PERSON_NAME=PER"])
    assert config.train.batch_size == 4 and config.model.tiny.epochs == 2.0
    assert config.data.label_map == {"PERSON_NAME": "PER"}
    with pytest.raises(ConfigError, match=r"train\.batchsize: unknown key \(did you mean train\.batch_size\?\)"):
        load_config(CONFIGS / "tiny.yaml", ["train.batchsize=4"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(CONFIGS / "tiny.yaml", ["train.batch_size"])


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    assert load_config(write(tmp_path, "train:\n  learning_rate: 3e-4\n")).train.learning_rate == 3e-4


def test_unreadable_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
