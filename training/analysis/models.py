"""The model a page is about: an exported directory (checked) or the tiny offline model
trained on the gold corpus, its stored run config, metrics and training log."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..train.config import RunConfig, config_from_dict, load_config
from ..train.pipeline import run_once
from .paths import DEFAULT_EXPORT, DEFAULT_LABELING_CONFIG, repo_root, resolve


def _read_json(model_dir: str | os.PathLike, name: str):
    return json.loads((Path(model_dir) / name).read_text(encoding="utf-8"))


def read_metrics(model_dir: str | os.PathLike) -> dict:
    return _read_json(model_dir, "metrics.json")


def read_training_log(model_dir: str | os.PathLike) -> list[dict]:
    return _read_json(model_dir, "training_log.json")


def model_config(model_dir: str | os.PathLike) -> RunConfig:
    """The run config stored in an exported model's metadata.json (validated as a YAML
    config is), with relative data paths resolved against the repository root."""
    config = config_from_dict(_read_json(model_dir, "metadata.json")["config"], f"{model_dir}/metadata.json")
    for key in ("train", "dev", "test", "labeling_config"):
        value = getattr(config.data, key)
        if value:
            setattr(config.data, key, str(resolve(value)))
    return config


def train_tiny_model(work_dir: str | os.PathLike | None = None, epochs: int = 8) -> Path:
    """Train the tiny offline model on the gold corpus and return its exported directory,
    under `work_dir`; by default a new temporary folder, removed when the process (the
    notebook's kernel) exits."""
    root = repo_root()
    if work_dir:
        work = Path(work_dir)
    else:
        work = Path(tempfile.mkdtemp(prefix="ner-report-"))
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    config = load_config(root / "configs" / "tiny.yaml", [
        f"data.train={root / DEFAULT_EXPORT}", f"data.labeling_config={root / DEFAULT_LABELING_CONFIG}",
        f"model.tiny.epochs={epochs}", f"output.dir={work / 'models'}", f"output.checkpoints={work / 'ckpt'}",
    ])
    return Path(run_once(config, False))


def ensure_model(model_dir: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None) -> Path:
    """`model_dir` when given (checked), else a freshly trained tiny model."""
    if model_dir:
        path = Path(model_dir)
        if not (path / "metadata.json").is_file():
            raise FileNotFoundError(f"{path}: not an exported model directory (no metadata.json)")
        return path
    return train_tiny_model(work_dir)
