"""Entity-level evaluation with seqeval (IOB2, strict).

The final evaluation of a training run and `python -m training.evaluate` both tag
documents through the exported model's `entity_spans` (the path predict() uses), so
their numbers agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from ..common.tables import Table
from ..data.sentences import align_sentences, tags_within
from ..model.decoding import best_path, transition_mask
from ..model.encoding import IGNORE_INDEX
from ..text.documents import Document, Span

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
        "macro_f1": macro_f1 if math.isfinite(macro_f1 := float(macro["f1-score"])) else 0.0,  # NaN: no type seen
        "support": int(micro["support"]),
        "per_type": per_type,
    }


def seqeval_table(metrics: dict, title: str = "") -> Table:
    """Per-type precision, recall, F1 and support, then the micro and macro averages."""
    rows = [[label, s["precision"], s["recall"], s["f1-score"], s["support"]]
            for label, s in sorted(metrics["per_type"].items())]
    footer = [["micro avg", metrics["precision"], metrics["recall"], metrics["f1"], metrics["support"]],
              ["macro f1", "", "", metrics["macro_f1"], ""]]
    return Table(["type", "precision", "recall", "f1", "support"], rows, title, footer)


def metrics_from_logits(logits, label_ids, tags: Sequence[str], crf=None) -> dict:
    """Trainer's compute_metrics: word positions are those with a label; decode them
    as predict() does (`decoding.best_path`)."""
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
