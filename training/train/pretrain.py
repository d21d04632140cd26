"""Masked-LM warm-up: train the backbone's encoder on unlabelled text before fine-tuning.

A masked-LM model is built from the token classifier's own config and made to share its
encoder module, so what the warm-up learns is exactly what fine-tuning starts from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

from ..model.encoding import encode_words, fit_windows, model_features, uses_word_shapes, word_pieces
from ..text.segmentation import Segmenter, word_surface
from .config import PretrainConfig

log = logging.getLogger(__name__)


def unlabelled_sentences(paths: list[str], segmenter: Segmenter) -> list[list[str]]:
    """The words of each sentence of unlabelled UTF-8 text files."""
    sentences = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        sentences += [[word_surface(text, word) for word in words] for words in segmenter.segment(text)]
    return sentences


def warm_up(model, tokenizer, sentences: list[list[str]], settings: PretrainConfig,
            learning_rate: float, seed: int, bf16: bool, output_dir: Path, max_length: int) -> dict:
    """Train `model`'s encoder with masked-LM on sentences of words; returns the Trainer's metrics."""
    pieces = word_pieces(tokenizer, model.config)
    features = []
    for words in sentences:
        for begin, end in fit_windows(pieces, words, max_length):
            encoded = encode_words(pieces, words[begin:end], max_length)
            features.append(model_features(encoded, uses_word_shapes(model.config)))
    mlm = AutoModelForMaskedLM.from_config(model.config)
    setattr(mlm, mlm.base_model_prefix, model.base_model)  # share the encoder
    log.info("masked-LM warm-up on %d sentences for %s epochs", len(features), settings.epochs)
    args = TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate or learning_rate, per_device_train_batch_size=settings.batch_size,
        warmup_steps=0.1, save_strategy="no", eval_strategy="no", logging_steps=50, report_to="none",
        bf16=bf16, use_cpu=not torch.cuda.is_available(), seed=seed, data_seed=seed,
        train_sampling_strategy="group_by_length", disable_tqdm=False,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=seed)
    trainer = Trainer(model=mlm, args=args, train_dataset=features, data_collator=collator)
    return trainer.train().metrics
