"""`python -m training.evaluate MODEL DATA`: score an exported model on any data the
readers accept (seqeval, IOB2, strict), optionally writing its errors."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .common.atomic import atomic_file, write_jsonl
from .data.readers import FORMATS, AnnotationError
from .data.splits import load_split_documents
from .inference import ModelLoadError, load_model
from .train.config import ConfigError, load_config
from .train.evaluate import evaluate_documents, seqeval_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate an exported model on any data the readers accept (seqeval, IOB2, strict).")
    parser.add_argument("model_dir", help="an exported model directory (models/<run-name>)")
    parser.add_argument("data", help="annotation file: Label Studio JSON/JSON-MIN, CoNLL or JSON lines")
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    parser.add_argument("--config", help="a run config whose data.label_map/labeling_config/tag_column apply")
    parser.add_argument("--errors", help="write false positives/negatives to this JSON-lines file")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model_dir, precision=args.precision)
        config = load_config(args.config, [f"data.format={args.format}"])
        documents = load_split_documents(args.data, config.data, model.labels)
    except (ModelLoadError, AnnotationError, ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics, errors = evaluate_documents(model, documents)
    print(f"{args.data}: {len(documents)} document(s)")
    print(seqeval_table(metrics))
    if args.errors:
        with atomic_file(Path(args.errors)) as staging:
            write_jsonl(staging, errors)
        counts = Counter(e["kind"] for e in errors)
        print(f"wrote {args.errors}: {counts['false_positive']} false positives, "
              f"{counts['false_negative']} false negatives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
