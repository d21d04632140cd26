"""A model on its own test split, scored as `python -m training.evaluate` scores it (the
predict() path, on the word grid shared by gold and prediction), keeping what the pages
show: word-level tags for the confusion matrix, sentences for the error pages; plus the
learning curve read from the Trainer's log."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from ..common.tables import Table
from ..data.splits import load_splits
from ..inference import NerModel, load_model
from ..text.bio import tags_to_spans
from ..text.documents import Document, Span
from ..train.evaluate import GridSentence, score_documents
from .models import model_config


def span_key(span: Span) -> tuple[int, int, str]:
    """What makes two spans the same entity (strict matching)."""
    return span.start, span.end, span.label


@dataclass
class SentenceResult:
    """One sentence of the shared word grid with its gold and predicted spans."""

    doc: Document
    start: int
    end: int
    gold: list[Span]
    predicted: list[Span]

    @property
    def errors(self) -> int:
        return len({span_key(s) for s in self.gold} ^ {span_key(s) for s in self.predicted})

    @classmethod
    def from_grid(cls, row: GridSentence) -> SentenceResult:
        def spans(tags: list[str]) -> list[Span]:
            return tags_to_spans(row.words, tags, row.doc.text)

        return cls(row.doc, row.words[0][0], row.words[-1][1], spans(row.gold), spans(row.predicted))


@dataclass
class Evaluation:
    """`training.train.evaluate.score_documents`, keeping the word-level tags and sentences."""

    metrics: dict
    errors: list[dict]
    gold_tags: list[list[str]]
    pred_tags: list[list[str]]
    sentences: list[SentenceResult] = field(default_factory=list)
    labels: tuple[str, ...] = ()
    split: str = "test"


def evaluation_documents(model_dir: str | os.PathLike) -> tuple[list[Document], str]:
    """The documents a model was evaluated on (its test split, else dev) and the split name."""
    config = model_config(model_dir)
    splits = load_splits(config.data, config.seed)
    return (splits.test, "test") if splits.test else (splits.dev, "dev")


def evaluate_model(model: NerModel, documents: Sequence[Document], split: str = "test") -> Evaluation:
    """Score `documents` through the predict() path and its scoring grid."""
    scores = score_documents(model, documents)
    return Evaluation(scores.metrics, scores.errors, [r.gold for r in scores.grid], [r.predicted for r in scores.grid],
                      [SentenceResult.from_grid(r) for r in scores.grid], tuple(model.labels), split)


def load_and_evaluate(model_dir: str | os.PathLike) -> tuple[NerModel, Evaluation]:
    """(model, Evaluation on its own test split), fp32 as at export so the numbers match metrics.json."""
    model = load_model(model_dir, precision="fp32")
    documents, split = evaluation_documents(model_dir)
    return model, evaluate_model(model, documents, split)


def collapse(tag: str) -> str:
    """`B-ORG`/`I-ORG` -> `ORG`; `O` stays."""
    return tag if tag == "O" else tag[2:]


def confusion(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]],
              labels: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """Word-level confusion counts with B-/I- collapsed: (classes, counts[gold][predicted])."""
    classes = [*labels, "O"]
    index = {c: i for i, c in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for gold, pred in zip(gold_tags, pred_tags):
        for g, p in zip(gold, pred):
            counts[index[collapse(g)]][index[collapse(p)]] += 1
    return classes, counts


def learning_curve(log: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """From a Trainer log_history: (epoch, value) for train loss, dev loss and dev F1."""
    curves: dict[str, list[tuple[float, float]]] = {"loss": [], "eval_loss": [], "eval_f1": []}
    for entry in log:
        for key in curves:
            if key in entry and "epoch" in entry:
                curves[key].append((float(entry["epoch"]), float(entry[key])))
    return curves


def errors_table(errors: Sequence[dict], limit: int = 20) -> Table:
    rows = [[e["kind"].replace("_", " "), e["label"], e["text"], e["source"] or e["doc_id"]] for e in errors[:limit]]
    title = f"Errors ({len(errors)}; first {min(limit, len(errors))})"
    return Table(["kind", "type", "text", "document"], rows, title)
