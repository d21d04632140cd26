"""What is in an annotated corpus: entities per document and type, span lengths in
words, frequent surface forms, validation warnings, and a flawed copy of an export that
shows the readers' warnings at work.

Free of matplotlib and torch (`python -m training.stats` prints `counts_table` on the
base install); the plots of these numbers are in `figures.py`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

from ..common.tables import Table
from ..data.readers import Corpus, read_corpus
from ..data.sentences import document_sentences
from ..text.documents import Document, Span
from ..text.schema import LabelSchema, read_labeling_config
from .paths import DEFAULT_EXPORT, DEFAULT_LABELING_CONFIG, resolve


def load_schema(labeling_config: str | os.PathLike = DEFAULT_LABELING_CONFIG) -> LabelSchema:
    return read_labeling_config(resolve(labeling_config))


def load_corpus(path: str | os.PathLike = DEFAULT_EXPORT, schema: LabelSchema | None = None,
                fmt: str = "auto") -> Corpus:
    """Read an export through the project's readers (validated, NFC)."""
    if schema is None and str(path).endswith(".json"):
        schema = load_schema()
    return read_corpus(resolve(path), fmt, schema)


def corpus_labels(corpus: Corpus, schema: LabelSchema | None = None) -> tuple[str, ...]:
    return tuple(schema.labels) if schema is not None else corpus.labels


def document_name(doc: Document) -> str:
    return doc.source or doc.id


# -- counts and warnings -----------------------------------------------------------------
def counts_table(corpus: Corpus, labels: Sequence[str]) -> Table:
    """Entities per document (rows) and type (columns), a total column and a TOTAL row."""
    rows, totals = [], Counter()
    for doc in corpus.documents:
        counts = Counter(span.label for span in doc.spans)
        totals.update(counts)
        rows.append([document_name(doc), *(counts[label] for label in labels), sum(counts.values())])
    footer = [["TOTAL", *(totals[label] for label in labels), sum(totals.values())]]
    return Table(["document", *labels, "total"], rows, "Entities per article and type", footer)


def warnings_table(corpus: Corpus, title: str = "Validation warnings") -> Table:
    return Table(["#", "warning"], [[i + 1, w] for i, w in enumerate(corpus.warnings)], title)


# -- span lengths ------------------------------------------------------------------------
def _span_word_lengths(doc: Document, segmenter) -> list[tuple[Span, int]]:
    """Each gold span with its length in words (segmenter words, split at span edges
    exactly as training splits them)."""
    lengths = []
    for sentence in document_sentences(doc, segmenter):
        first = {start: k for k, (start, _) in enumerate(sentence.words)}
        last = {end: k for k, (_, end) in enumerate(sentence.words)}
        lo, hi = sentence.words[0][0], sentence.words[-1][1]
        for span in doc.spans:
            if lo <= span.start and span.end <= hi:
                lengths.append((span, last[span.end] - first[span.start] + 1))
    return lengths


def span_lengths(corpus: Corpus, segmenter) -> dict[str, list[int]]:
    """Per type, the length in words of every span."""
    result: dict[str, list[int]] = defaultdict(list)
    for doc in corpus.documents:
        for span, length in _span_word_lengths(doc, segmenter):
            result[span.label].append(length)
    return dict(result)


def span_length_table(lengths: dict[str, list[int]], labels: Sequence[str]) -> Table:
    rows = []
    for label in labels:
        values = sorted(lengths.get(label, []))
        if values:
            rows.append([label, len(values), min(values), values[len(values) // 2],
                         round(sum(values) / len(values), 2), max(values)])
    return Table(["type", "spans", "min", "median", "mean", "max"], rows, "Span length in words")


# -- surface forms -----------------------------------------------------------------------
def top_surface_forms(corpus: Corpus, labels: Sequence[str], n: int = 5) -> dict[str, list[tuple[str, int]]]:
    counts: dict[str, Counter] = {label: Counter() for label in labels}
    for doc in corpus.documents:
        for span in doc.spans:
            counts.setdefault(span.label, Counter())[span.text] += 1
    return {label: counts[label].most_common(n) for label in labels}


def surface_forms_table(forms: dict[str, list[tuple[str, int]]]) -> Table:
    rows = [[label, rank + 1, text, count] for label, items in forms.items() for rank, (text, count) in enumerate(items)]
    return Table(["type", "rank", "surface form", "count"], rows, "Most frequent surface forms per type")


# -- a flawed copy -----------------------------------------------------------------------
def _widen_first_span(tasks: list[dict]) -> str | None:
    """Widen the first span followed by a space over that space (in place); say what
    changed, or None when no span is followed by a space."""
    for task in tasks:
        text = task["data"]["text"]
        for annotation in task.get("annotations") or []:
            for result in annotation.get("result") or []:
                value = result.get("value") or {}
                end = value.get("end")
                if isinstance(end, int) and end < len(text) and text[end] == " ":
                    value["end"] = end + 1
                    value["text"] = text[value["start"]:end + 1]
                    return (f"task {task.get('id')}: span {value['text']!r} ({value['labels'][0]}) "
                            f"now ends with a space, [{value['start']}:{end}] -> [{value['start']}:{end + 1}]")
    return None


def read_flawed_copy(path: str | os.PathLike = DEFAULT_EXPORT, schema: LabelSchema | None = None) -> tuple[Corpus, str]:
    """Read a copy of a Label Studio export in which one span is widened over the
    whitespace beside it, to show the readers' warnings at work. The readers read files,
    so the copy lives in a temporary file that is removed at once. Returns (corpus, what
    was changed)."""
    source = resolve(path)
    tasks = json.loads(source.read_text(encoding="utf-8"))
    described = _widen_first_span(tasks)
    if described is None:
        raise ValueError(f"{source}: no span followed by a space to widen")
    with tempfile.TemporaryDirectory(prefix="flawed-export-") as tmp:
        copy = Path(tmp) / f"flawed_{source.name}"
        copy.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        corpus = read_corpus(copy, "labelstudio", schema or load_schema())
    return corpus, described
