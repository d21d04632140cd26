"""Export a trained model to `models/<run-name>/`, atomically.

Everything is written into a hidden temporary directory beside the target, then swapped
in with renames: a failed or killed run never leaves a half-written model directory,
and a previous export of the same name survives until the new one is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .inference import SETTINGS_FILE


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `target`, on failure it is removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        backup = target.parent / f".{target.name}.old-{staging.name.rsplit('-', 1)[-1]}"
        if target.exists():
            target.rename(backup)
        staging.rename(target)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` (os.replace),
    on any failure it is removed and `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def save_model(directory: Path, tagger, tokenizer, settings: dict) -> None:
    """Encoder weights (safetensors) and config with labels, the CRF's and the word
    features' parameters when the model has them, tokenizer files, inference settings."""
    tagger.save(directory)
    tokenizer.save_pretrained(directory)
    write_json(directory / SETTINGS_FILE, settings)


def versions() -> dict:
    import tokenizers  # noqa: F401
    import torch
    import transformers

    import underthesea

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "underthesea": getattr(underthesea, "__version__", "unknown"),
    }


def model_card(run_name: str, metadata: dict, metrics: dict, table: str) -> str:
    backbone = metadata["backbone"]
    lines = [f"# {run_name}", ""]
    if backbone["fallback_reason"]:
        lines += [
            "> **Warning: this model does NOT use the requested pretrained backbone.**",
            f"> Requested `{backbone['requested']}`, which could not be loaded "
            f"({backbone['fallback_reason']}); the tiny offline backbone, trained from scratch, "
            "was used instead. Expect far lower accuracy than PhoBERT. Set "
            "`model.name_or_path` to a local PhoBERT directory and train again.",
            "",
        ]
    lines += [
        "Vietnamese named-entity recognition (token classification, IOB2) trained with "
        "`python -m training.run`.",
        "",
        "## Usage",
        "",
        "```python",
        "from training import load_model",
        f'model = load_model("models/{run_name}")',
        'model.predict("Ngày 23.7, Thứ trưởng Đỗ Hùng Việt dẫn đầu đoàn Việt Nam.")',
        "```",
        "",
        "## Details",
        "",
        f"- backbone requested: `{backbone['requested']}`; used: `{backbone['used']}`",
        f"- labels: {', '.join(metadata['labels'])}",
        f"- segmenter: `{metadata['segmenter']['name']}`",
        f"- data: {', '.join(p for p in metadata['data_files'] if p)} (sha256 `{metadata['data_sha256'][:16]}…`)",
        f"- documents: {metadata['documents']}",
        f"- precision during training: {metadata['bf16'] and 'bf16' or 'fp32'}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in metadata['versions'].items())}",
        "",
        f"## Evaluation ({metrics.get('split', 'test')} split, seqeval strict IOB2)",
        "",
        "```",
        table,
        "```",
        "",
        "## Limitations",
        "",
        "Trained on a handful of news articles about ASEAN diplomacy: expect it to miss "
        "entities of other domains. Scores on so few documents vary widely between splits; "
        "see `--cv` for leave-one-document-out estimates.",
    ]
    return "\n".join(lines) + "\n"
