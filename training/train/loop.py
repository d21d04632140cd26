"""The training loop: segmented documents -> a trained `TokenTagger`.

A plain Hugging Face Trainer run, as in `run_ner.py`: labels on each word's first
sub-token, dynamic padding, length-grouped batches, evaluation and a checkpoint per
epoch, the best checkpoint (dev F1) loaded at the end. Around it: the backbone (the
pretrained one, or the tiny offline one), an optional masked-LM warm-up, the
warm-start feature CRF, early stopping and the time budget.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

from ..model.encoding import pad_batch, uses_word_shapes, word_pieces
from ..model.tagger import TokenTagger
from ..model.word_features import WordFeatureEmissions
from ..text.documents import Document
from ..text.schema import LabelSchema
from ..text.segmentation import Segmenter
from .backbone import Backbone, load_backbone
from .checkpoints import SaveRunConfig
from .config import RunConfig
from .datasets import SentenceDataset, sentences_of
from .evaluate import metrics_from_logits
from .precision import training_precision
from .pretrain import unlabelled_sentences, warm_up
from .progress import EpochLog
from .stopping import EarlyStopping, TimeBudget
from .warm_start import WarmStartCandidate

log = logging.getLogger("training")


@dataclass
class Recipe:
    """The optimisation settings a run actually uses: the tiny backbone's own (scaled
    by corpus size) replace `train.*`, since a model trained from scratch needs a much
    larger learning rate than a pretrained one."""

    epochs: float
    learning_rate: float
    feature_learning_rate: float
    max_minutes: float | None


@dataclass
class Trained:
    tagger: TokenTagger  # the best checkpoint, loaded into these same modules
    tokenizer: object
    backbone: Backbone
    trainer: Trainer
    bf16: bool
    precision_reason: str
    train_seconds: float
    train_tokens: int
    pretrain_metrics: dict | None = None
    warm_start: dict | None = None  # dev F1 of the warm-start feature CRF, and whether it was kept
    time_budget: dict | None = None  # the opt-in wall-clock stop: its minutes and whether it fired


def train_model(config: RunConfig, train_docs: Sequence[Document], dev_docs: Sequence[Document],
                labels: Sequence[str], run_dir: Path, segmenter: Segmenter, resume_from: Path | None = None) -> Trained:
    tags = LabelSchema(tuple(labels)).bio_tags()
    train_sentences = sentences_of(train_docs, segmenter)
    dev_sentences = sentences_of(dev_docs, segmenter)
    set_seed(config.seed)
    backbone = load_backbone(config.model, tags, [w for s in train_sentences for w in s.surfaces()],
                             run_dir / "tokenizer-build")
    recipe = training_recipe(config, backbone, len(train_sentences))
    precision = training_precision(config.train.bf16)
    bf16 = precision.name == "bf16"
    log.info("training precision: %s", precision)
    pretrain_metrics = None
    if config.pretrain.epochs > 0:
        texts = [s.surfaces() for s in train_sentences] + unlabelled_sentences(config.pretrain.texts, segmenter)
        pretrain_metrics = warm_up(backbone.model, backbone.tokenizer, texts, config.pretrain, recipe.learning_rate,
                                   config.seed, bf16, run_dir / "pretrain", config.model.max_length)
    tagger = build_tagger(config, backbone, tags)
    pieces = word_pieces(backbone.tokenizer, backbone.model.config)
    encode = lambda sentences: SentenceDataset(  # noqa: E731
        sentences, pieces, {t: i for i, t in enumerate(tags)}, config.model.max_length,
        uses_word_shapes(backbone.model.config), tagger.feature_buckets)
    train_set, dev_set = encode(train_sentences), encode(dev_sentences)
    started = time.perf_counter()  # the warm start counts as training time, and against the budget
    budget = TimeBudget(recipe.max_minutes, since=started) if recipe.max_minutes else None
    candidate = None
    if tagger.feature_buckets and config.model.feature_warm_start and resume_from is None:  # resuming loads one
        candidate = WarmStartCandidate(tagger)
        candidate.fit(train_set.features, config.model.feature_l2)
    has_dev = bool(dev_set.features)
    trainer = Trainer(
        model=tagger,
        args=training_arguments(config, recipe, run_dir, bf16, has_dev),
        train_dataset=train_set,
        eval_dataset=dev_set if has_dev else None,
        data_collator=lambda batch: pad_batch(batch, pieces.pad_id),
        processing_class=backbone.tokenizer,
        compute_metrics=lambda p: {k: v for k, v in metrics_from_logits(
            p.predictions, p.label_ids, tags, tagger.crf).items() if k != "per_type"},
        callbacks=[EpochLog(), SaveRunConfig(config), *([budget] if budget else [])],
        optimizers=(torch.optim.AdamW(tagger.parameter_groups(recipe.learning_rate, config.train.weight_decay,
                                                              recipe.feature_learning_rate),
                                      lr=recipe.learning_rate), None),
    )
    trainer.remove_callback(PrinterCallback)  # EpochLog prints one line per epoch instead of log dicts
    log.info("training on %d windows (%d tokens), %d dev windows; %s epochs, lr %g, %s, %s head%s",
             len(train_set.features), train_set.token_count(), len(dev_set.features), recipe.epochs,
             recipe.learning_rate, "bf16" if bf16 else "fp32", config.model.head,
             ", word features" if tagger.feature_buckets else "")
    if has_dev:
        # the candidate is measured before the early-stopping callback exists: it is not an epoch
        bar = candidate.measure(trainer) if candidate else float("-inf")
        trainer.add_callback(EarlyStopping(config.train.early_stopping_patience, bar,
                                           candidate.record if candidate else None))
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    warm_start = candidate.settle(trainer.state.best_metric) if candidate and has_dev else None
    seconds = time.perf_counter() - started
    tokens_seen = int(train_set.token_count() * trainer.state.epoch) if trainer.state.epoch else 0
    return Trained(tagger, backbone.tokenizer, backbone, trainer, bf16, precision.reason, seconds, tokens_seen,
                   pretrain_metrics, warm_start, {"minutes": budget.minutes, "fired": budget.fired} if budget else None)


def training_recipe(config: RunConfig, backbone: Backbone, sentences: int) -> Recipe:
    if not backbone.is_tiny:
        return Recipe(config.train.epochs, config.train.learning_rate, config.model.feature_learning_rate,
                      config.train.max_minutes)
    tiny = config.model.tiny
    scale = learning_rate_scale(sentences, tiny.reference_sentences)
    if scale < 1:
        log.info("tiny backbone, %d training sentences: learning rates scaled by sqrt(%d / %d) = %.3f",
                 sentences, tiny.reference_sentences, sentences, scale)
    return Recipe(tiny.epochs, tiny.learning_rate * scale, config.model.feature_learning_rate * scale,
                  tiny.max_minutes)


def learning_rate_scale(sentences: int, reference: int | None) -> float:
    """sqrt(reference / sentences), at most 1. The tiny recipe's learning rates suit
    `reference` training sentences; an epoch over n sentences takes n / batch steps, and
    the best constant step size for a fixed number of SGD steps goes as 1 / sqrt(steps)."""
    if not reference or sentences <= reference:
        return 1.0
    return (reference / sentences) ** 0.5


def uses_word_features(config: RunConfig, backbone: Backbone) -> bool:
    setting = config.model.word_features
    return backbone.is_tiny if setting == "auto" else bool(setting)


def build_tagger(config: RunConfig, backbone: Backbone, tags: list[str]) -> TokenTagger:
    features = WordFeatureEmissions(config.model.feature_buckets, len(tags)) \
        if uses_word_features(config, backbone) else None
    return TokenTagger(backbone.model, tags, config.model.head, word_features=features,
                       emission_dropout=config.model.emission_dropout)


def training_arguments(config: RunConfig, recipe: Recipe, run_dir: Path, bf16: bool,
                       has_dev: bool) -> TrainingArguments:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        per_device_train_batch_size=config.train.batch_size,
        per_device_eval_batch_size=config.train.eval_batch_size,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        weight_decay=config.train.weight_decay,
        warmup_steps=config.train.warmup_ratio,  # transformers 5: a float below 1 is a share of the steps
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch",
        save_total_limit=config.output.save_total_limit,
        load_best_model_at_end=has_dev,
        metric_for_best_model="f1" if has_dev else None,
        greater_is_better=True,
        logging_strategy="epoch",  # the train loss once per epoch, for EpochLog and training_log.json
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        ddp_find_unused_parameters=False if distributed else None,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,  # EpochLog draws the bar
    )
