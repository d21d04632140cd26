"""`python -m training.stats FILE...`: per-document and total entity counts per type,
plus every validation warning: what to look at before training."""

from __future__ import annotations

import argparse
import sys

from .analysis.corpus import counts_table
from .data.readers import FORMATS, AnnotationError, read_corpus
from .text.schema import LabelSchema, read_labeling_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.stats", description=__doc__)
    parser.add_argument("files", nargs="+", help="annotation files (Label Studio JSON/JSON-MIN, CoNLL, JSON lines)")
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    parser.add_argument("--labeling-config", default="annotations/labeling_config.xml",
                        help="Label Studio labeling config giving the label set (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        schema: LabelSchema | None = read_labeling_config(args.labeling_config)
    except ValueError as exc:
        print(f"note: {exc}; label set taken from the data", file=sys.stderr)
        schema = None
    status = 0
    for path in args.files:
        try:
            corpus = read_corpus(path, args.format, schema)
        except (AnnotationError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        labels = schema.labels if schema else corpus.labels
        print(f"{path}: {len(corpus.documents)} document(s)")
        print(counts_table(corpus, labels))
        for warning in corpus.warnings:
            print(f"warning: {warning}")
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
