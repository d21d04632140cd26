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
from .inference.precision import PRECISIONS
from .train.config import ConfigError, load_config
from .train.evaluate import evaluate_documents, seqeval_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate an exported model on any data the readers accept (seqeval, IOB2, strict).")
    parser.add_argument("model_dir", help="an exported model directory (models/<run-name>)")
    parser.add_argument("data", help="annotation file: Label Studio JSON/JSON-MIN, CoNLL or JSON lines")
    parser.add_argument("--format", choices=["auto", *FORMATS],
                        help="the data's format (default: the config's data.format, else found from the file)")
    parser.add_argument("--config", help="a run config whose data.format/label_map/labeling_config/tag_column "
                                         "apply (default: none; the labels are the model's)")
    parser.add_argument("--errors", help="write false positives/negatives to this JSON-lines file")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model_dir, precision=args.precision)
        # Without --config no labeling config is read: the model names its labels, and a
        # default path relative to the working directory would fail outside the repo.
        overrides = [] if args.config else ["data.labeling_config=null"]
        config = load_config(args.config, overrides + ([f"data.format={args.format}"] if args.format else []))
        corpus = load_split_documents(args.data, config.data, model.labels)
    except (ModelLoadError, AnnotationError, ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in corpus.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not corpus.documents:
        print(f"error: {args.data}: no usable document to score (see the warnings)", file=sys.stderr)
        return 1
    metrics, errors = evaluate_documents(model, corpus.documents)
    print(f"{args.data}: {len(corpus.documents)} document(s)")
    print(seqeval_table(metrics))
    if args.errors:
        try:
            with atomic_file(Path(args.errors)) as staging:
                write_jsonl(staging, errors)
        except OSError as exc:
            print(f"error: --errors {args.errors}: {exc}", file=sys.stderr)
            return 1
        counts = Counter(e["kind"] for e in errors)
        print(f"wrote {args.errors}: {counts['false_positive']} false positives, "
              f"{counts['false_negative']} false negatives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
