"""Shared by the benchmark scripts: machine description, timing, and a
PhoBERT-base-geometry model trained on the gold corpus (cached under build/)."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"

# PhoBERT-base geometry: 12 layers x 768, 12 heads, 3072 intermediate.
BASE_GEOMETRY = ["model.tiny.hidden_size=768", "model.tiny.num_hidden_layers=12",
                 "model.tiny.num_attention_heads=12", "model.tiny.intermediate_size=3072"]


def machine() -> str:
    import torch  # here, not at the top: synthetic.py and written.py import ROOT only, without torch

    model = "unknown CPU"
    flags = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            info = handle.read()
        model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), model)
        flags = sorted({f for f in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2") if f" {f}" in info})
    except OSError:
        pass
    return (f"CPU: {model} | flags: {' '.join(flags) or 'none'} | cores: {os.cpu_count()} | "
            f"torch threads: {torch.get_num_threads()} | torch {torch.__version__} | Python {platform.python_version()}")


def timed(fn, repeat: int = 1):
    """(result, best seconds of `repeat` runs)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def base_sized_model(epochs: int = 12) -> Path:
    """A PhoBERT-base-geometry model trained (from scratch, offline) on the gold corpus,
    so speed figures reflect a real PhoBERT-base forward pass. Cached."""
    # here, not at the top: the training stack (datasets, accelerate) is for this function only
    from training.train.config import load_config
    from training.train.pipeline import run_once

    target = BUILD / "models" / "base-geometry"
    if (target / "model.safetensors").exists():
        return target
    config = load_config(ROOT / "configs" / "tiny.yaml", [
        *BASE_GEOMETRY, f"model.tiny.epochs={epochs}", "model.tiny.learning_rate=3e-4",
        "run_name=base-geometry", f"output.dir={BUILD / 'models'}", f"output.checkpoints={BUILD / 'ckpt'}",
        f"data.train={ROOT / 'annotations' / 'gold_export.json'}",
        f"data.labeling_config={ROOT / 'annotations' / 'labeling_config.xml'}",
    ])
    return run_once(config, resume=False)


def article_texts(copies: int = 1) -> list[str]:
    """The bundled articles' texts, `copies` times over."""
    tasks = json.loads((ROOT / "annotations" / "tasks.json").read_text(encoding="utf-8"))
    return [task["data"]["text"] for task in tasks] * copies


@dataclass
class EncoderPasses:
    windows: list[list[str]]  # the word lists predict() tags, in text order
    tokens: int  # their PhoBERT tokens, <s> and </s> included, before padding
    batches: list[dict]  # padded input_ids / attention_mask, grouped as predict() groups them


def encoder_passes(model, texts: list[str]) -> EncoderPasses:
    """What predict() hands the encoder for `texts` (its segmentation, `fit_windows` and
    `length_batches` with its defaults), without the word features: the raw forward's input."""
    from training.inference.model import BATCH_SIZE, BATCH_TOKENS
    from training.model.encoding import encode_words, fit_windows, length_batches, model_features, pad_batch
    from training.text.segmentation import word_surface

    windows = []
    for text in texts:
        for words in model.segmenter.segment(text):
            surfaces = [word_surface(text, w) for w in words]
            windows += [surfaces[a:b] for a, b in fit_windows(model.pieces, surfaces, model.max_length)]
    encoded = [encode_words(model.pieces, words, model.max_length) for words in windows]
    lengths = [len(e.input_ids) for e in encoded]
    batches = [pad_batch([model_features(encoded[i], False) for i in members], model.pieces.pad_id)
               for members in length_batches(lengths, BATCH_SIZE, BATCH_TOKENS)]
    return EncoderPasses(windows, sum(lengths), batches)
