"""`python -m training.run`: train, evaluate and export a PhoBERT token classifier.

One YAML config describes the run (default: configs/default.yaml); `--set KEY=VALUE`
overrides single keys. The run reads and validates the data, segments it, loads the
backbone (falling back to the tiny offline one loudly, if allowed), trains with the
Hugging Face Trainer (early stopping on dev F1, best checkpoint kept), evaluates the
exported model on the test split with seqeval, and writes models/<run-name>/
atomically. Runs unchanged under `torchrun --nproc_per_node=N -m training.run`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError, RunConfig, load_config
from .data import Splits, data_fingerprint, leave_one_out, load_splits
from .readers import AnnotationError
from .sentences import MAX_CONTENT_TOKENS, LabelledSentence, document_sentences, split_to_fit

log = logging.getLogger("training")

DEFAULT_CONFIG = "configs/default.yaml"
MAX_WARM_START_ITERATIONS = 300  # L-BFGS steps; converges in 40-100 on 2,500 sentences


def use_bf16(setting) -> bool:
    import torch

    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from .inference import cpu_bf16_flags

    return bool(cpu_bf16_flags())


def sentences_of(documents, segmenter) -> list[LabelledSentence]:
    return [s for doc in documents for s in document_sentences(doc, segmenter)]


class SentenceDataset:
    """Tokenised sentences for the Trainer: input ids plus labels on first sub-tokens."""

    def __init__(self, sentences: list[LabelledSentence], pieces, tag_ids: dict[str, int], max_length: int,
                 word_shapes: bool = False, feature_buckets: int = 0):
        from .encoding import encode_words, label_positions, model_features

        self.features = []
        for sentence in sentences:
            for piece in split_to_fit(sentence, pieces.count, min(MAX_CONTENT_TOKENS, max_length - 2)):
                encoded = encode_words(pieces, piece.surfaces(), max_length, feature_buckets)
                self.features.append({
                    **model_features(encoded, word_shapes),
                    "labels": label_positions(encoded, [tag_ids[t] for t in piece.tags]),
                })

    def to_hf(self):
        import datasets

        return datasets.Dataset.from_list(self.features)

    def token_count(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)


@dataclass
class Trained:
    tagger: object  # tagger.TokenTagger: encoder, head, word features
    tokenizer: object
    backbone: object
    trainer: object
    bf16: bool
    train_seconds: float
    train_tokens: int
    pretrain_metrics: dict | None = None
    warm_start: dict | None = None  # dev F1 of the warm-start feature CRF, and whether it was kept


def inference_settings(config: RunConfig, labels, backbone) -> dict:
    from .word_features import TEMPLATE_VERSION

    word_features = uses_word_features(config, backbone)
    return {
        "format_version": 1,
        "labels": list(labels),
        "segmenter": {"name": config.segmenter.name, "settings": config.segmenter.settings},
        "max_length": config.model.max_length,
        "head": config.model.head,
        "word_features": word_features,
        "word_feature_template": TEMPLATE_VERSION if word_features else None,
        "backbone": backbone.record(),
    }


def uses_word_features(config: RunConfig, backbone) -> bool:
    setting = config.model.word_features
    return backbone.is_tiny if setting == "auto" else bool(setting)


def train_model(config: RunConfig, train_docs, dev_docs, labels, run_dir: Path, segmenter, resume: bool = False) -> Trained:
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    from .backbone import load_backbone
    from .encoding import pad_batch, uses_word_shapes, word_pieces
    from .evaluate import metrics_from_logits
    from .schema import LabelSchema
    from .tagger import TokenTagger
    from .stopping import EarlyStopping, TimeBudget
    from .word_features import WordFeatureEmissions

    tags = LabelSchema(tuple(labels)).bio_tags()
    tag_ids = {t: i for i, t in enumerate(tags)}
    train_sentences = sentences_of(train_docs, segmenter)
    dev_sentences = sentences_of(dev_docs, segmenter)
    set_seed(config.seed)
    words = [w for s in train_sentences for w in s.surfaces()]
    backbone = load_backbone(config.model, tags, words, run_dir / "tokenizer-build")
    epochs, learning_rate, max_minutes = config.train.epochs, config.train.learning_rate, config.train.max_minutes
    feature_learning_rate = config.model.feature_learning_rate
    if backbone.is_tiny:
        tiny = config.model.tiny
        scale = learning_rate_scale(len(train_sentences), tiny.reference_sentences)
        epochs, learning_rate, max_minutes = tiny.epochs, tiny.learning_rate * scale, tiny.max_minutes
        feature_learning_rate *= scale
        if scale < 1:
            log.info("tiny backbone, %d training sentences: learning rates scaled by sqrt(%d / %d) = %.3f",
                     len(train_sentences), tiny.reference_sentences, len(train_sentences), scale)
    bf16 = use_bf16(config.train.bf16)
    pretrain_metrics = None
    if config.pretrain.epochs > 0:
        from .pretrain import unlabelled_sentences, warm_up

        extra = unlabelled_sentences(config.pretrain.texts, segmenter)
        pretrain_metrics = warm_up(backbone.model, backbone.tokenizer, train_sentences + extra, config.pretrain,
                                   learning_rate, config.seed, bf16, run_dir / "pretrain", config.model.max_length)
    pieces = word_pieces(backbone.tokenizer, backbone.model.config)
    shapes = uses_word_shapes(backbone.model.config)
    features = WordFeatureEmissions(config.model.feature_buckets, len(tags)) \
        if uses_word_features(config, backbone) else None
    tagger = TokenTagger(backbone.model, tags, config.model.head, word_features=features,
                         emission_dropout=config.model.emission_dropout)
    buckets = tagger.feature_buckets
    train_set = SentenceDataset(train_sentences, pieces, tag_ids, config.model.max_length, shapes, buckets)
    dev_set = SentenceDataset(dev_sentences, pieces, tag_ids, config.model.max_length, shapes, buckets)
    started = time.perf_counter()  # the warm start counts as training time, and against the budget
    warm_started = buckets and config.model.feature_warm_start and not resume  # a resumed run loads its checkpoint
    if warm_started:
        from .feature_crf import fit_features

        fit_features(tagger, train_set.features, config.model.feature_l2, MAX_WARM_START_ITERATIONS)
    has_dev = bool(dev_set.features)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    args = TrainingArguments(
        output_dir=str(run_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=config.train.batch_size,
        per_device_eval_batch_size=config.train.eval_batch_size,
        gradient_accumulation_steps=config.train.gradient_accumulation_steps,
        weight_decay=config.train.weight_decay,
        warmup_steps=config.train.warmup_ratio,
        eval_strategy="epoch" if has_dev else "no",
        save_strategy="epoch",
        save_total_limit=config.output.save_total_limit,
        load_best_model_at_end=has_dev,
        metric_for_best_model="f1" if has_dev else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=config.train.logging_steps,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        ddp_find_unused_parameters=False if distributed else None,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length",
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    optimizer = torch.optim.AdamW(tagger.parameter_groups(learning_rate, config.train.weight_decay,
                                                          feature_learning_rate), lr=learning_rate)
    trainer = Trainer(
        model=tagger,
        args=args,
        train_dataset=train_set.to_hf(),
        eval_dataset=dev_set.to_hf() if has_dev else None,
        data_collator=lambda batch: pad_batch(batch, pieces.pad_id),
        processing_class=backbone.tokenizer,
        compute_metrics=lambda p: {k: v for k, v in metrics_from_logits(p.predictions, p.label_ids, tags,
                                                                        tagger.crf).items() if k != "per_type"},
        callbacks=[TimeBudget(max_minutes, since=started)] if max_minutes else [],
        optimizers=(optimizer, None),
    )
    log.info("training on %d sentences (%d tokens), %d dev sentences; %s epochs, lr %g, %s, %s head%s",
             len(train_set.features), train_set.token_count(), len(dev_set.features), epochs, learning_rate,
             "bf16" if bf16 else "fp32", config.model.head, ", word features" if buckets else "")
    warm_start = None
    if warm_started and has_dev:
        # the warm-start feature CRF is a candidate too, and the simpler one (keep_warm_start)
        with classifier_zeroed(backbone.model):
            scores = trainer.evaluate()
            warm_weights = {k: v.detach().clone() for k, v in tagger.state_dict().items()}
        warm_start = {"dev_f1": scores["eval_f1"], "standard_error": f1_standard_error(scores["eval_f1"],
                                                                                       scores["eval_support"])}
    if has_dev:  # added after the warm start's evaluation, which must not count as an epoch
        bar = warm_start["dev_f1"] + warm_start["standard_error"] if warm_start else float("-inf")
        trainer.add_callback(EarlyStopping(config.train.early_stopping_patience, bar))
    trainer.train(resume_from_checkpoint=True if resume else None)
    if warm_start:
        warm_start["best_epoch_dev_f1"] = trainer.state.best_metric or 0.0
        warm_start["kept"] = keep_warm_start(warm_start["dev_f1"], warm_start["best_epoch_dev_f1"],
                                             warm_start["standard_error"])
        if warm_start["kept"]:
            log.warning("no epoch beat the warm-start feature CRF on dev by more than one standard error "
                        "(F1 %.4f vs %.4f ± %.4f): keeping the warm start", warm_start["best_epoch_dev_f1"],
                        warm_start["dev_f1"], warm_start["standard_error"])
            tagger.load_state_dict(warm_weights)
    seconds = time.perf_counter() - started
    tokens_seen = int(train_set.token_count() * trainer.state.epoch) if trainer.state.epoch else 0
    # the best checkpoint is loaded into these same modules, in place
    return Trained(tagger, backbone.tokenizer, backbone, trainer, bf16, seconds, tokens_seen, pretrain_metrics,
                   warm_start)


def learning_rate_scale(sentences: int, reference: int | None) -> float:
    """sqrt(reference / sentences), at most 1. The tiny recipe's learning rates were tuned
    on ~60 training sentences; an epoch over n sentences takes n / batch steps, and the
    best constant step size for a fixed number of SGD steps goes as 1 / sqrt(steps).
    Written corpus, 4,569 sentences, rates / 8: test F1 0.926-0.931 over epochs 1-7
    instead of 0.926 at epoch 1 falling to 0.910 by epoch 3 (warm start alone: 0.922)."""
    if not reference or sentences <= reference:
        return 1.0
    return (reference / sentences) ** 0.5


@contextmanager
def classifier_zeroed(model):
    """The encoder's token-classification layer at zero inside the block, restored after:
    the warm-start candidate is then exactly the feature CRF, not the feature CRF plus a
    fresh layer's random logits, while training still starts from that random layer. (A
    zero layer gets no gradient once the feature table has memorised the training
    sentences: five articles, the encoder then never moved off the warm start in 2 of 5
    folds and cross-validation F1 fell from 0.785 to 0.751.)"""
    import torch

    saved = [p.detach().clone() for p in model.classifier.parameters()]
    with torch.no_grad():
        for parameter in model.classifier.parameters():
            parameter.zero_()
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, value in zip(model.classifier.parameters(), saved):
                parameter.copy_(value)


def f1_standard_error(f1: float, support: int) -> float:
    """Binomial standard error of an entity-level F1 measured on `support` gold entities."""
    return (f1 * (1 - f1) / support) ** 0.5 if support else 0.0


def keep_warm_start(warm_f1: float, best_epoch_f1: float, standard_error: float) -> bool:
    """The one-standard-error rule: the encoder's best epoch is exported only if it beats the
    warm-start feature CRF on dev by more than one standard error. Written corpus, 4,569 train
    sentences: epochs that led the warm start on dev by 0.4-0.5 points (under one standard
    error) scored 0.1-0.8 points below it on test."""
    return best_epoch_f1 <= warm_f1 + standard_error


def in_memory_model(config: RunConfig, labels, trained: Trained, path: Path):
    """The trained tagger as predict() would load it, without a round trip through disk."""
    from .inference import NerModel

    parameter = next(trained.tagger.parameters())
    return NerModel(trained.tagger, trained.tokenizer, inference_settings(config, labels, trained.backbone), path,
                    dtype=parameter.dtype, device=parameter.device)


def export_run(config: RunConfig, splits: Splits, trained: Trained) -> Path:
    from .evaluate import evaluate_documents, format_table, write_jsonl
    from .export import atomic_directory, model_card, save_model, versions, write_json
    from .inference import load_model

    target = Path(config.output.dir) / config.run_name
    eval_docs, split_name = (splits.test, "test") if splits.test else (splits.dev, "dev")
    settings = inference_settings(config, splits.labels, trained.backbone)
    with atomic_directory(target) as staging:
        save_model(staging, trained.tagger, trained.tokenizer, settings)
        exported = load_model(staging, precision="fp32")
        metrics, errors = evaluate_documents(exported, eval_docs) if eval_docs else ({}, [])
        metrics.update({
            "split": split_name,
            "documents": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)},
            "backbone": trained.backbone.record(),
            "train_seconds": round(trained.train_seconds, 1),
            "train_tokens_per_second": round(trained.train_tokens / max(trained.train_seconds, 1e-9), 1),
            "bf16": trained.bf16,
            "pretrain": trained.pretrain_metrics,
            "warm_start": trained.warm_start,
        })
        table = format_table(metrics) if eval_docs else "(no evaluation documents)"
        metadata = {
            "run_name": config.run_name,
            "config": config.to_dict(),
            "labels": list(splits.labels),
            "segmenter": settings["segmenter"],
            "backbone": trained.backbone.record(),
            "data_files": [config.data.train, config.data.dev, config.data.test],
            "data_sha256": data_fingerprint([config.data.train, config.data.dev, config.data.test]),
            "documents": metrics["documents"],
            "bf16": trained.bf16,
            "versions": versions(),
        }
        write_json(staging / "metrics.json", metrics)
        write_json(staging / "metadata.json", metadata)
        write_json(staging / "training_log.json", trained.trainer.state.log_history)
        write_jsonl(staging / "errors.jsonl", errors)
        (staging / "model_card.md").write_text(model_card(config.run_name, metadata, metrics, table), encoding="utf-8")
    print(f"\nEvaluation on the {split_name} split ({len(eval_docs)} document(s)), seqeval strict IOB2:")
    print(table)
    if trained.backbone.fallback_reason:
        print(f"\nNOTE: backbone {trained.backbone.requested} was NOT used (fallback: tiny); see {target}/model_card.md")
    print(f"\nexported {target}")
    return target


def checkpoint_dir(config: RunConfig, suffix: str = "") -> Path:
    return Path(config.output.checkpoints) / (config.run_name + suffix)


def run_once(config: RunConfig, resume: bool) -> Path | None:
    from .segmentation import get_segmenter

    splits = load_splits(config.data, config.seed)
    for warning in splits.warnings:
        log.warning(warning)
    log.info("documents: %d train, %d dev, %d test; labels: %s",
             len(splits.train), len(splits.dev), len(splits.test), ", ".join(splits.labels))
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    run_dir = checkpoint_dir(config)
    if resume and not any(run_dir.glob("checkpoint-*")):
        raise ValueError(f"--resume: no checkpoint in {run_dir}")
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    trained = train_model(config, splits.train, splits.dev, splits.labels, run_dir, segmenter, resume)
    if not trained.trainer.is_world_process_zero():
        return None
    return export_run(config, splits, trained)


def run_cv(config: RunConfig) -> dict:
    """Leave-one-document-out: each document is the test set once; mean ± std of F1."""
    from .evaluate import evaluate_documents
    from .export import atomic_directory, write_json
    from .segmentation import get_segmenter

    splits = load_splits(config.data, config.seed)
    documents = [*splits.train, *splits.dev, *splits.test]
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    folds = []
    for index, (train, dev, test) in enumerate(leave_one_out(documents, config.seed)):
        run_dir = checkpoint_dir(config, f"-cv{index}")
        shutil.rmtree(run_dir, ignore_errors=True)
        trained = train_model(config, train, dev, splits.labels, run_dir, segmenter)
        model = in_memory_model(config, splits.labels, trained, run_dir)
        metrics, _ = evaluate_documents(model, test)
        folds.append({"test_document": test[0].source or test[0].id, "f1": metrics["f1"],
                      "precision": metrics["precision"], "recall": metrics["recall"], "macro_f1": metrics["macro_f1"],
                      "per_type": metrics["per_type"], "train_seconds": round(trained.train_seconds, 1)})
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"fold {index}: test {folds[-1]['test_document']}: F1 {metrics['f1']:.3f}")
    f1s = [fold["f1"] for fold in folds]
    summary = {"folds": folds, "f1_mean": statistics.mean(f1s), "f1_std": statistics.pstdev(f1s),
               "backbone": trained.backbone.record()}
    print("\nleave-one-document-out cross-validation (seqeval strict IOB2, micro F1):")
    for fold in folds:
        print(f"  {fold['test_document']:<32} {fold['f1']:.3f}")
    print(f"  {'mean ± std':<32} {summary['f1_mean']:.3f} ± {summary['f1_std']:.3f}")
    with atomic_directory(Path(config.output.dir) / f"{config.run_name}-cv") as staging:
        write_json(staging / "cv_metrics.json", summary)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.run",
        description=__doc__.split("\n\n")[0],
        epilog="Examples:\n"
               "  python -m training.run                              # configs/default.yaml\n"
               "  python -m training.run --config configs/tiny.yaml --set train.batch_size=4\n"
               "  python -m training.run --config configs/tiny.yaml --cv\n"
               "  torchrun --nproc_per_node=2 -m training.run --config configs/tiny.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="run config (YAML); default: %(default)s")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--cv", action="store_true", help="leave-one-document-out cross-validation (no export)")
    parser.add_argument("--resume", action="store_true", help="resume from the last checkpoint of this run")
    parser.add_argument("--print-config", action="store_true", help="print the validated config and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, args.set)
        if args.print_config:
            import yaml

            print(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
            return 0
        if config.train.num_threads:
            import torch

            torch.set_num_threads(config.train.num_threads)
        if args.cv:
            run_cv(config)
        else:
            run_once(config, args.resume)
    except (ConfigError, AnnotationError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        from .backbone import BackboneError

        if not isinstance(exc, BackboneError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
