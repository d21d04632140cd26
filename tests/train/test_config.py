"""Config validation: every bad key is named with its dotted path."""

from pathlib import Path

import pytest

from training.train.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


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


BAD_VALUES = [
    ("train.epochs=[1", "train.epochs"),  # YAML syntax error in a --set value
    ("segmenter.settings.speed=fast", "segmenter.settings"),
    ("segmenter.name=jieba", "segmenter.name"),
    ("model.tiny.hidden_size=0", "model.tiny.hidden_size"),
    ("model.tiny.num_attention_heads=3", "model.tiny.num_attention_heads"),
    ("model.tiny.learning_rate=-0.001", "model.tiny.learning_rate"),
    ("train.learning_rate=-1", "train.learning_rate"),
    ("model.feature_learning_rate=-1", "model.feature_learning_rate"),
    ("pretrain.learning_rate=-1", "pretrain.learning_rate"),
    ("model.tiny.vocab_size=-5", "model.tiny.vocab_size"),
    ("output.save_total_limit=-1", "output.save_total_limit"),
    ("model.tiny.epochs=-1", "model.tiny.epochs"),
    ("model.tiny.epochs=.inf", "model.tiny.epochs"),  # YAML reads .inf as a float
    ("train.learning_rate=.nan", "train.learning_rate"),
    ("data.split.dev=.inf", "data.split.dev"),
    ("data.split.test=1.5", "data.split.test"),  # neither a fraction nor a count
    ("seed=-1", "seed"),
    ("seed=4294967296", "seed"),
    ("data.labels=[ORG, PER, ORG]", "data.labels"),
    ("data.labels=[]", "data.labels"),
    ("pretrain.texts=[/missing/extra.txt]", "pretrain.texts"),
    ("run_name=' '", "run_name"),
]


@pytest.mark.parametrize("override,key", BAD_VALUES)
def test_each_bad_value_is_one_line_naming_its_key_before_any_data_is_read(override, key, capsys):
    from training.run import main

    # the data file does not exist: an error about it would mean data was read first
    status = main(["--config", str(CONFIGS / "tiny.yaml"), "--set", "data.train=/nonexistent/export.json",
                   "--set", override])
    err = capsys.readouterr().err
    assert status == 2
    problems = [line.strip() for line in err.splitlines() if line.startswith("  ")]
    assert len(problems) == 1 and problems[0].startswith(f"{key}:"), err
    assert "Traceback" not in err and "nonexistent" not in err


def test_zero_tiny_epochs_needs_the_warm_start(capsys):
    from training.run import main

    args = ["--config", str(CONFIGS / "tiny.yaml"), "--set", "data.train=/nonexistent/export.json",
            "--set", "model.tiny.epochs=0"]
    assert main([*args, "--set", "model.feature_warm_start=false"]) == 2
    assert "model.tiny.epochs: 0 trains nothing unless model.feature_warm_start is true" in capsys.readouterr().err
    assert main([*args, "--print-config"]) == 0  # the feature CRF alone is a valid run


def test_duplicate_yaml_keys_are_refused(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 3\n  epochs: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "duplicate key 'epochs'" in str(info.value) and "line 3" in str(info.value)


def test_a_label_map_target_outside_the_schema_is_one_error_naming_the_key():
    from training.data.splits import load_splits

    config = load_config(CONFIGS / "tiny.yaml", ["data.label_map.PER=PERSON", "data.label_map.LOC=LOC"])
    config.data.train = str(CONFIGS.parent / "annotations" / "gold_export.json")
    config.data.labeling_config = str(CONFIGS.parent / "annotations" / "labeling_config.xml")
    with pytest.raises(ValueError) as info:
        load_splits(config.data, 0)
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and lines[1].strip().startswith("data.label_map.PER: target 'PERSON'")
