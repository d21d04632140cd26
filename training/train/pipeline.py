"""A whole run from a validated config: read and split the data, train, then export
(`run_once`) or cross-validate by leaving one document out (`run_cv`)."""

from __future__ import annotations

import logging
import shutil
import statistics
from pathlib import Path

from ..common.atomic import atomic_directory, write_json
from ..data.splits import Splits, leave_one_out, load_splits
from ..text.segmentation import get_segmenter
from .config import RunConfig
from .evaluate import evaluate_documents
from .backbone import TINY, short_name
from .checkpoints import resume_checkpoint
from .export import export_run, export_target, in_memory_model
from .loop import train_model

log = logging.getLogger("training")


def checkpoint_dir(config: RunConfig, suffix: str = "") -> Path:
    return Path(config.output.checkpoints) / (config.export_name(short_name(config.model.name_or_path)) + suffix)


def run_once(config: RunConfig, resume: bool = False) -> Path | None:
    """Train and export `models/<run-name>`; None on the non-zero ranks of a distributed run."""
    # where the model will go, checked before hours of training (either backbone's name)
    for backbone in {short_name(config.model.name_or_path), *([TINY] if config.model.fallback == "tiny" else [])}:
        export_target(config, backbone)
    run_dir = checkpoint_dir(config)
    resume_from = resume_checkpoint(run_dir, config) if resume else None
    splits = read_splits(config)
    log.info("documents: %d train, %d dev, %d test; labels: %s",
             len(splits.train), len(splits.dev), len(splits.test), ", ".join(splits.labels))
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    trained = train_model(config, splits.train, splits.dev, splits.labels, run_dir, segmenter, resume_from)
    if not trained.trainer.is_world_process_zero():
        return None
    return export_run(config, splits, trained)


def read_splits(config: RunConfig, hold_out: bool = True) -> Splits:
    """The run's documents and splits, every reader warning logged."""
    splits = load_splits(config.data, config.seed, hold_out)
    for warning in splits.warnings:
        log.warning(warning)
    return splits


def run_cv(config: RunConfig) -> dict:
    """Leave-one-document-out: each document is the test set once; mean ± std of F1."""
    splits = read_splits(config, hold_out=False)  # every document is a test set once: data.split does not apply
    documents = [*splits.train, *splits.dev, *splits.test]
    if len(documents) < 3:
        raise ValueError(f"--cv needs at least 3 documents (a test, a dev and a training one per fold); the data "
                         f"has {len(documents)}")
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
    with atomic_directory(Path(config.output.dir) / f"{config.export_name(trained.backbone.short_name)}-cv") as staging:
        write_json(staging / "cv_metrics.json", summary)
    return summary
