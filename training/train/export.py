"""Export a trained run to `models/<run-name>/`, atomically: the model in the exported
format (`model.artifact`), evaluated through the path predict() uses, with its reports
beside it (metrics, errors, training log, metadata, model card).
"""

from __future__ import annotations

import platform
from pathlib import Path

import tokenizers
import torch
import transformers
import underthesea

from ..common.atomic import atomic_directory, write_json, write_jsonl
from ..data.splits import Splits, data_fingerprint
from ..inference import NerModel, load_model
from ..inference.precision import Precision
from ..model.artifact import SETTINGS_FILE, model_settings, save_model
from .config import RunConfig
from .evaluate import evaluate_documents, seqeval_table
from .loop import Trained, uses_word_features


def export_target(config: RunConfig, backbone_name: str) -> Path:
    """models/<run-name> for the backbone trained; refused when something other than an
    exported model is there (a data file or folder that happens to carry the name)."""
    folder = Path(config.output.dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output.dir: {folder} is a file, not a directory")
    target = folder / config.export_name(backbone_name)
    if target.exists() and not (target.is_dir() and (target / SETTINGS_FILE).is_file()):
        raise ValueError(f"output.dir/run_name: {target} exists and is not an exported model; it would be "
                         "replaced: choose another output.dir or run_name")
    return target


def inference_settings(config: RunConfig, labels, trained: Trained) -> dict:
    return model_settings(labels, {"name": config.segmenter.name, "settings": config.segmenter.settings},
                          config.model.max_length, config.model.head,
                          uses_word_features(config, trained.backbone), trained.backbone.record())


def in_memory_model(config: RunConfig, labels, trained: Trained, path: Path) -> NerModel:
    """The trained tagger as predict() would load it, without a round trip through disk."""
    parameter = next(trained.tagger.encoder.parameters())
    precision = Precision(parameter.dtype, "as trained")
    return NerModel(trained.tagger, trained.tokenizer, inference_settings(config, labels, trained), path,
                    precision=precision, device=parameter.device)


def export_run(config: RunConfig, splits: Splits, trained: Trained) -> Path:
    run_name = config.export_name(trained.backbone.short_name)
    target = export_target(config, trained.backbone.short_name)
    eval_docs, split_name = (splits.test, "test") if splits.test else (splits.dev, "dev")
    settings = inference_settings(config, splits.labels, trained)
    with atomic_directory(target) as staging:
        save_model(staging, trained.tagger, trained.tokenizer, settings)
        exported = load_model(staging, precision="fp32")
        metrics, errors = evaluate_documents(exported, eval_docs) if eval_docs else ({}, [])
        metrics.update(run_record(splits, trained, split_name))
        table = str(seqeval_table(metrics)) if eval_docs else "(no evaluation documents)"
        metadata = {
            "run_name": run_name,
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
        (staging / "model_card.md").write_text(model_card(run_name, metadata, metrics, table), encoding="utf-8")
    print(f"\nEvaluation on the {split_name} split ({len(eval_docs)} document(s)), seqeval strict IOB2:")
    print(table)
    if trained.backbone.fallback_reason:
        print(f"\nNOTE: backbone {trained.backbone.requested} was NOT used (fallback: tiny); see {target}/model_card.md")
    print(f"\nexported {target}")
    return target


def run_record(splits: Splits, trained: Trained, split_name: str) -> dict:
    """What metrics.json says about the run beside the scores."""
    return {
        "split": split_name,
        "documents": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)},
        "backbone": trained.backbone.record(),
        "train_seconds": round(trained.train_seconds, 1),
        "train_tokens_per_second": round(trained.train_tokens / max(trained.train_seconds, 1e-9), 1),
        "bf16": trained.bf16,
        "bf16_reason": trained.precision_reason,  # why training ran in bf16 or fp32
        "pretrain": trained.pretrain_metrics,
        "warm_start": trained.warm_start,
        "time_budget": trained.time_budget,
    }


def versions() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
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
