"""Entity-level evaluation with seqeval (IOB2, strict), and `python -m training.evaluate`.

The final evaluation of a training run and this command both tag sentences through the
exported model's `tag_sentences` (the path predict() uses), so their numbers agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from .decoding import best_path, transition_mask
from .encoding import IGNORE_INDEX
from .documents import Document, Span
from .sentences import align_sentences, tags_within

CONTEXT = 40


def seqeval_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Micro/macro precision, recall, F1 and per-type scores with support."""
    report = classification_report(
        [list(s) for s in gold], [list(s) for s in predicted],
        mode="strict", scheme=IOB2, output_dict=True, zero_division=0,
    )
    per_type = {
        label: {k: float(v) if k != "support" else int(v) for k, v in scores.items()}
        for label, scores in report.items() if not label.endswith(" avg")
    }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    macro = report.get("macro avg", {"f1-score": 0.0})
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "macro_f1": float(macro["f1-score"]),
        "support": int(micro["support"]),
        "per_type": per_type,
    }


def format_table(metrics: dict) -> str:
    rows = [(label, s["precision"], s["recall"], s["f1-score"], s["support"]) for label, s in sorted(metrics["per_type"].items())]
    rows.append(("micro avg", metrics["precision"], metrics["recall"], metrics["f1"], metrics["support"]))
    lines = [f"{'type':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for label, p, r, f, n in rows:
        lines.append(f"{label:<10} {p:>9.3f} {r:>7.3f} {f:>6.3f} {n:>8d}")
    lines.append(f"{'macro f1':<10} {'':>9} {'':>7} {metrics['macro_f1']:>6.3f}")
    return "\n".join(lines)


def metrics_from_logits(logits, label_ids, tags: Sequence[str], crf=None) -> dict:
    """Trainer's compute_metrics: word positions are those with a label; decode them
    as predict() does (`decoding.best_path`)."""
    import torch

    start, trans = transition_mask(tags)
    gold_all, pred_all = [], []
    logits = torch.as_tensor(logits).float()
    label_ids = torch.as_tensor(label_ids)
    for row in range(logits.shape[0]):
        keep = label_ids[row] != IGNORE_INDEX
        path = best_path(logits[row][keep], start, trans, crf)
        gold_all.append([tags[int(i)] for i in label_ids[row][keep]])
        pred_all.append([tags[i] for i in path])
    return seqeval_metrics(gold_all, pred_all)


@dataclass
class GridSentence:
    """One sentence of the scoring grid: its words and both tag sequences."""

    doc: Document
    words: list[tuple[int, int]]
    gold: list[str]
    predicted: list[str]


@dataclass
class SpanScores:
    metrics: dict
    errors: list[dict]
    grid: list[GridSentence]


def score_spans(documents: Sequence[Document], raws: Sequence, predicted: Sequence[Sequence[Span]],
                labels: Sequence[str] | None = None) -> SpanScores:
    """Score any system's spans against the gold: per document, both span sets are laid on
    one word grid (the document's words split at every span boundary) fine enough for
    either, so strict seqeval equals exact span matching. With `labels`, both sides are
    restricted to those types first."""
    keep = (lambda spans: list(spans)) if labels is None else (lambda spans: [s for s in spans if s.label in labels])  # noqa: E731
    grid, errors = [], []
    for doc, raw, spans in zip(documents, raws, predicted):
        gold, pred = keep(doc.spans), keep(spans)
        for words in align_sentences(doc.text, raw, [*gold, *pred]):
            grid.append(GridSentence(doc, words, tags_within(words, gold), tags_within(words, pred)))
        errors += error_records(doc, pred, gold)
    return SpanScores(seqeval_metrics([g.gold for g in grid], [g.predicted for g in grid]), errors, grid)


def evaluate_documents(model, documents: Sequence[Document], batch_size: int = 32) -> tuple[dict, list[dict]]:
    """Score a model the way users meet it: each document is segmented as predict() does
    (or keeps its given words, for pre-segmented corpora) and tagged through
    `NerModel.entity_spans`, then scored with `score_spans`. Returns (metrics, errors)."""
    scores = score_documents(model, documents, batch_size)
    return scores.metrics, scores.errors


def score_documents(model, documents: Sequence[Document], batch_size: int = 32) -> SpanScores:
    raws = [doc.words if doc.words is not None else model.segmenter.segment(doc.text) for doc in documents]
    scored = model.entity_spans([(doc.text, raw) for doc, raw in zip(documents, raws)], batch_size)
    return score_spans(documents, raws, [[span for span, _ in spans] for spans in scored])


def error_records(doc: Document, predicted: Sequence[Span], gold: Sequence[Span] | None = None) -> list[dict]:
    """False positives and negatives (strict: a span with a wrong type or boundary is both)."""
    gold = doc.spans if gold is None else gold
    key = lambda s: (s.start, s.end, s.label)  # noqa: E731
    gold_keys, pred_keys = {key(s) for s in gold}, {key(s) for s in predicted}
    records = []
    for kind, spans, other in (("false_negative", gold, pred_keys), ("false_positive", predicted, gold_keys)):
        for span in sorted(s for s in spans if key(s) not in other):
            records.append({
                "doc_id": doc.id, "source": doc.source, "kind": kind, "label": span.label,
                "text": doc.text[span.start:span.end], "start": span.start, "end": span.end,
                "context": doc.text[max(0, span.start - CONTEXT):span.end + CONTEXT].replace("\n", " "),
            })
    return records


def write_jsonl(path: Path, records: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    from .config import load_config
    from .data import load_split_documents
    from .inference import ModelLoadError, load_model
    from .readers import FORMATS, AnnotationError

    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate an exported model on any data the readers accept (seqeval, IOB2, strict).")
    parser.add_argument("model_dir", help="an exported model directory (models/<run-name>)")
    parser.add_argument("data", help="annotation file: Label Studio JSON/JSON-MIN, CoNLL or JSON lines")
    parser.add_argument("--format", default="auto", choices=["auto", *FORMATS])
    parser.add_argument("--config", help="a run config whose data.label_map/labeling_config/tag_column apply")
    parser.add_argument("--errors", help="write false positives/negatives to this JSON-lines file")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model_dir, precision=args.precision)
        config = load_config(args.config, [f"data.format={args.format}"])
        documents = load_split_documents(args.data, config.data, model.labels)
    except (ModelLoadError, AnnotationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics, errors = evaluate_documents(model, documents)
    print(f"{args.data}: {len(documents)} document(s)")
    print(format_table(metrics))
    if args.errors:
        write_jsonl(Path(args.errors), errors)
        counts = Counter(e["kind"] for e in errors)
        print(f"wrote {args.errors}: {counts['false_positive']} false positives, {counts['false_negative']} false negatives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
