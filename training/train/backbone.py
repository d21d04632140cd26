"""Backbone loading: a hub id or local directory, or the tiny offline backbone.

The real path (`AutoTokenizer`/`AutoModelForTokenClassification.from_pretrained`,
no remote code) is what users get by default. When it cannot be loaded and
`model.fallback` is `tiny`, training goes on with the tiny backbone under a banner that
says what happened and what to do; `fallback: error` stops instead. Which backbone was
requested and which was used is recorded in the exported model and its metrics.
"""

from __future__ import annotations

import logging
import os
import socket
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from transformers import AutoModelForTokenClassification, AutoTokenizer

from .config import ModelConfig
from .tiny_backbone import build_tiny_backbone

log = logging.getLogger(__name__)

TINY = "tiny"


class BackboneError(RuntimeError):
    pass


@dataclass
class Backbone:
    model: object
    tokenizer: object
    requested: str
    used: str
    fallback_reason: str | None = None

    @property
    def is_tiny(self) -> bool:
        return self.used == TINY

    @property
    def short_name(self) -> str:
        """What was trained, for the run name."""
        return short_name(self.used)

    def record(self) -> dict:
        return {"requested": self.requested, "used": self.used, "fallback_reason": self.fallback_reason}


def short_name(name_or_path: str) -> str:
    """A backbone's name in run names: `phobert-base-v2`, `tiny`, a directory's name."""
    return Path(name_or_path.rstrip("/")).name or name_or_path


def banner(lines: list[str], width: int = 88) -> str:
    """A box of `!` around `lines`, each wrapped (not cut) to fit `width` characters."""
    wrapped = [part for line in lines for part in textwrap.wrap(line, width - 4) or [""]]
    rule = "!" * width
    return "\n".join([rule, *(f"! {part.ljust(width - 4)} !" for part in wrapped), rule])


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the Hugging Face hub opens within `timeout` seconds:
    without one, asking huggingface_hub costs many seconds of retries and warnings."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def load_pretrained(name_or_path: str, labels: list[str], max_length: int, local_files_only: bool = False):
    """Load tokenizer and token-classification model with our label maps."""
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False,
                                              local_files_only=local_files_only)
    model = AutoModelForTokenClassification.from_pretrained(
        name_or_path,
        local_files_only=local_files_only,
        trust_remote_code=False,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a checkpoint with another classifier head
    )
    if model.config.max_position_embeddings - 2 < max_length:
        raise BackboneError(
            f"{name_or_path} has {model.config.max_position_embeddings} positions; "
            f"model.max_length={max_length} needs {max_length + 2}"
        )
    return model, tokenizer


def load_backbone(config: ModelConfig, labels: list[str], training_words: Iterable[str], work_dir: Path) -> Backbone:
    requested = config.name_or_path
    if requested == TINY:
        model, tokenizer = build_tiny_backbone(training_words, labels, config.tiny, work_dir, config.max_length)
        return Backbone(model, tokenizer, requested, TINY)
    is_local = Path(requested).exists()
    where = "local directory" if is_local else "Hugging Face hub id"
    log.info("loading backbone %s (%s)", requested, where)
    # offline, only the local cache can answer: ask it alone rather than wait on retries
    offline = not is_local and (bool(os.environ.get("HF_HUB_OFFLINE")) or not hub_reachable())
    try:
        model, tokenizer = load_pretrained(requested, labels, config.max_length, local_files_only=offline)
        return Backbone(model, tokenizer, requested, requested)
    except BackboneError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure is reported, never hidden
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if offline:
            reason = (f"the Hugging Face hub cannot be reached from here and {requested} is not in the local "
                      f"cache ({reason})")
    if config.fallback == "error":
        raise BackboneError(
            f"cannot load backbone {requested!r} ({where}): {reason}. Point model.name_or_path at a "
            f"local PhoBERT directory, or set model.fallback: tiny to train the offline backbone."
        )
    print(banner([
        f"PRETRAINED BACKBONE NOT LOADED: {requested}",
        f"reason: {textwrap.shorten(reason, 320, placeholder=' ...')}",
        "FALLING BACK to the tiny offline backbone (trained from scratch on your data):",
        "expect much lower accuracy than PhoBERT. To use the real model, download",
        "vinai/phobert-base-v2 elsewhere and set model.name_or_path to that directory,",
        "or set model.fallback: error to stop instead of falling back.",
        "The fallback is recorded in metrics.json and model_card.md.",
    ]), flush=True)
    log.warning("backbone %s not loaded (%s); using the tiny backbone", requested, reason)
    model, tokenizer = build_tiny_backbone(training_words, labels, config.tiny, work_dir, config.max_length)
    return Backbone(model, tokenizer, requested, TINY, reason)
