"""The exported-model format: the one place that names its files, writes and reads them.

A model directory holds

- the encoder as Hugging Face writes it: `config.json` (with the tags as `id2label`)
  and `model.safetensors`;
- the tokenizer's files (`tokenizer_config.json`, `vocab.txt`, `bpe.codes` for PhoBERT);
- `ner_config.json`: what prediction must repeat from training (segmenter, maximum
  length, head, word features and their template version, backbone) and
  `format_version`;
- `crf.safetensors` for the `crf` head, `word_features.safetensors` with word features.

Training writes it with `save_model`, prediction reads it with `load_parts`; neither
knows a file name. Reports beside the model (metrics, model card) are the training
layer's business and not part of the format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from safetensors.torch import load_file, save_file
from transformers import AutoModelForTokenClassification, AutoTokenizer

from ..common.atomic import write_json
from .crf import LinearChainCRF
from .tagger import TokenTagger
from .word_features import TEMPLATE_VERSION, WordFeatureEmissions

FORMAT_VERSION = 1
SETTINGS_FILE = "ner_config.json"
WEIGHTS_FILE = "model.safetensors"
CRF_FILE = "crf.safetensors"
FEATURES_FILE = "word_features.safetensors"
# PhobertTokenizer's own files: without them transformers fails with an error that names none
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, SETTINGS_FILE, "tokenizer_config.json", "vocab.txt", "bpe.codes")


class ModelLoadError(RuntimeError):
    """A model directory that cannot be loaded; the message names the file."""


def model_settings(labels: Sequence[str], segmenter: dict, max_length: int, head: str, word_features: bool,
                   backbone: dict) -> dict:
    """The contents of `ner_config.json`."""
    return {
        "format_version": FORMAT_VERSION,
        "labels": list(labels),
        "segmenter": segmenter,
        "max_length": max_length,
        "head": head,
        "word_features": word_features,
        "word_feature_template": TEMPLATE_VERSION if word_features else None,
        "backbone": backbone,
    }


def save_model(directory: Path, tagger: TokenTagger, tokenizer, settings: dict) -> None:
    """Write every file of the format into `directory` (which the caller makes atomic)."""
    tagger.encoder.save_pretrained(directory)
    if tagger.crf is not None:
        save_file(_cpu_fp32(tagger.crf.state_dict()), str(directory / CRF_FILE))
    if tagger.word_features is not None:
        save_file(_cpu_fp32({"weights": tagger.word_features.weights.weight}), str(directory / FEATURES_FILE))
    tokenizer.save_pretrained(directory)
    write_json(directory / SETTINGS_FILE, settings)


@dataclass
class ModelParts:
    tagger: TokenTagger
    tokenizer: Any
    settings: dict


def load_parts(path: Path) -> ModelParts:
    """Read a model directory (no network); every failure is a ModelLoadError naming the file."""
    check_model_dir(path)
    settings = _read_settings(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any tokenizer failure means unreadable files
        raise ModelLoadError(f"{path}: tokenizer files unreadable: {exc}") from exc
    try:
        encoder = AutoModelForTokenClassification.from_pretrained(
            path, trust_remote_code=False, local_files_only=True, use_safetensors=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path / WEIGHTS_FILE}: weights unreadable or corrupted: {exc}") from exc
    tags = [encoder.config.id2label[i] for i in range(encoder.config.num_labels)]
    crf = None
    if settings.get("head") == "crf":
        crf = _load_part(path, CRF_FILE, "the model uses a crf head", lambda state: _crf(state, tags))
    features = None
    if settings.get("word_features"):
        features = _load_part(path, FEATURES_FILE, "the model uses word features",
                              lambda state: _word_features(state, len(tags)))
    tagger = TokenTagger(encoder, tags, settings.get("head", "softmax"), crf=crf, word_features=features)
    return ModelParts(tagger, tokenizer, settings)


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no such model directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"{path}: incomplete model directory, missing {', '.join(missing)} "
            f"(export a model with `python -m training.run`)")


def _read_settings(path: Path) -> dict:
    try:
        settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path / SETTINGS_FILE}: unreadable: {exc}") from exc
    if not isinstance(settings, dict):
        raise ModelLoadError(f"{path / SETTINGS_FILE}: expected a JSON object")
    version = settings.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ModelLoadError(f"{path / SETTINGS_FILE}: model format version {version}; this version of the "
                             f"package reads version {FORMAT_VERSION}. Load it with the package version that "
                             f"exported it, or retrain")
    template = settings.get("word_feature_template", 1)
    if settings.get("word_features") and template != TEMPLATE_VERSION:
        raise ModelLoadError(
            f"{path / SETTINGS_FILE}: the word-feature table was trained on feature template {template}; this "
            f"version of the package computes template {TEMPLATE_VERSION}. Retrain the model (python -m training.run) "
            f"or load it with the package version that exported it")
    return settings


def _load_part(path: Path, name: str, why: str, build: Callable[[dict], Any]):
    if not (path / name).is_file():
        raise ModelLoadError(f"{path}: incomplete model directory, missing {name} ({why})")
    try:
        return build(load_file(str(path / name)))
    except Exception as exc:  # noqa: BLE001 - a corrupted file fails in many ways
        raise ModelLoadError(f"{path / name}: unreadable or corrupted: {exc}") from exc


def _crf(state: dict, tags: list[str]) -> LinearChainCRF:
    crf = LinearChainCRF(tags)
    crf.load_state_dict(state)
    return crf


def _word_features(state: dict, num_labels: int) -> WordFeatureEmissions:
    weights = state["weights"]
    if weights.shape[1] != num_labels:
        raise ValueError(f"weights for {weights.shape[1]} labels, the model has {num_labels}")
    module = WordFeatureEmissions(weights.shape[0], num_labels)
    module.weights.weight.data.copy_(weights)
    return module


def _cpu_fp32(state: dict) -> dict:
    return {key: value.detach().float().cpu().contiguous() for key, value in state.items()}
