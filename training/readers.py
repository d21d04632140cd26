"""Readers: Label Studio exports (JSON, JSON-MIN), CoNLL and JSON lines -> Documents.

Every reader validates what it reads and reports *every* problem at once, each naming
the file, the task (or line) and the span. Fixable problems (whitespace at a span's
edge, exact duplicate spans) are fixed and reported as warnings; the rest raise
`AnnotationError`. Text is normalised to NFC and offsets are mapped with it, so an NFD
export gives the same documents as an NFC one.

Choosing one annotation of a task (documented in annotations/GUIDELINES.md): cancelled
(skipped) annotations are ignored; among the rest a `ground_truth` one wins, then the
most recently updated (`updated_at`, else `created_at`), then the highest id. A task
with no usable annotation is skipped with a warning: unlabelled is not "no entities".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .bio import is_valid_iob2, split_tag, tags_to_spans
from .documents import Document, Span, normalize_nfc
from .schema import LabelSchema

FORMATS = ("labelstudio", "labelstudio-min", "conll", "jsonl")


class AnnotationError(ValueError):
    """Invalid annotations; `problems` lists one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} annotation problem(s):\n  " + "\n  ".join(problems))


@dataclass
class Corpus:
    documents: list[Document]
    warnings: list[str] = field(default_factory=list)

    @property
    def labels(self) -> tuple[str, ...]:
        """Entity types present, in order of first appearance."""
        seen: dict[str, None] = {}
        for doc in self.documents:
            for span in doc.spans:
                seen.setdefault(span.label, None)
        return tuple(seen)


@dataclass(frozen=True)
class RawSpan:
    start: Any
    end: Any
    label: str
    text: str | None
    labels: tuple = ()


class _Problems:
    def __init__(self, path: Path):
        self.path = path
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def where(self, task: Any, span: RawSpan | None = None) -> str:
        where = f"{self.path}: task {task}"
        if span is not None:
            where += f": span [{span.start}:{span.end}] {span.text!r} ({span.label})"
        return where

    def error(self, task: Any, span: RawSpan | None, reason: str) -> None:
        self.errors.append(f"{self.where(task, span)}: {reason}")

    def warn(self, task: Any, span: RawSpan | None, reason: str) -> None:
        self.warnings.append(f"{self.where(task, span)}: {reason}")


def map_label(label: str, label_map: Mapping[str, str | None] | None) -> str | None:
    """With a label map, types it does not name become O (None); an explicit None/"O"
    drops a type too. Without one, labels pass unchanged."""
    if not label_map:
        return label
    target = label_map.get(label)
    return None if target in (None, "O", "") else target


def build_document(
    text: Any,
    raw_spans: Iterable[RawSpan],
    *,
    task_id: Any,
    source: str,
    problems: _Problems,
    schema_labels: tuple[str, ...] | None,
) -> Document | None:
    """Validate spans against the original text, then normalise to NFC."""
    if not isinstance(text, str) or not text.strip():
        problems.error(task_id, None, "empty or missing text")
        return None
    norm = normalize_nfc(text)
    spans: list[Span] = []
    for raw in raw_spans:
        if len(raw.labels) > 1:
            problems.error(task_id, raw, f"one span carries several labels {list(raw.labels)}")
            continue
        if schema_labels is not None and raw.label not in schema_labels:
            problems.error(task_id, raw, f"label {raw.label!r} is not in the schema {list(schema_labels)}")
            continue
        if not (isinstance(raw.start, int) and isinstance(raw.end, int)) or isinstance(raw.start, bool):
            problems.error(task_id, raw, "start/end are not integers")
            continue
        if not 0 <= raw.start < raw.end <= len(text):
            problems.error(task_id, raw, f"offsets out of range for a text of {len(text)} characters")
            continue
        covered = text[raw.start:raw.end]
        if raw.text is not None and covered != raw.text:
            problems.error(task_id, raw, f"text[start:end] is {covered!r}, not the span text")
            continue
        start, end = raw.start, raw.end
        stripped = covered.strip()
        if not stripped:
            problems.error(task_id, raw, "span covers only whitespace")
            continue
        if stripped != covered:
            start += len(covered) - len(covered.lstrip())
            end -= len(covered) - len(covered.rstrip())
            problems.warn(task_id, raw, f"whitespace at the edge trimmed to [{start}:{end}]")
        s, e = norm.nfc_index(start), norm.nfc_index(end)
        spans.append(Span(s, e, raw.label, norm.text[s:e]))
    spans.sort()
    kept: list[Span] = []
    for span in spans:
        if kept and (span.start, span.end, span.label) == (kept[-1].start, kept[-1].end, kept[-1].label):
            problems.warn(task_id, None, f"duplicate span [{span.start}:{span.end}] {span.text!r} ({span.label}) dropped")
            continue
        clash = next((k for k in kept if k.overlaps(span)), None)
        if clash is not None:
            problems.error(
                task_id,
                None,
                f"span [{span.start}:{span.end}] {span.text!r} ({span.label}) overlaps "
                f"[{clash.start}:{clash.end}] {clash.text!r} ({clash.label}); spans must be flat",
            )
            continue
        kept.append(span)
    return Document(id=str(task_id), text=norm.text, spans=kept, source=source)


def _finish(documents: list[Document | None], problems: _Problems) -> Corpus:
    if problems.errors:
        raise AnnotationError(problems.errors)
    return Corpus([d for d in documents if d is not None], problems.warnings)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError([f"{path}: cannot read JSON: {exc}"]) from exc


def _annotation_rank(annotation: Mapping[str, Any]) -> tuple:
    return (
        bool(annotation.get("ground_truth")),
        str(annotation.get("updated_at") or annotation.get("created_at") or ""),
        annotation.get("id") or annotation.get("annotation_id") or 0,
    )


def _result_spans(results: Iterable[Mapping[str, Any]], schema: LabelSchema, label_map) -> tuple[list[RawSpan], Counter]:
    """Spans of the configured `<Labels>` control, and a count of `labels` results from
    other controls (ignored, but reported: a renamed control must not lose every span)."""
    spans, ignored = [], Counter()
    for result in results:
        if result.get("type", "labels") != "labels":
            continue
        if result.get("from_name", schema.from_name) != schema.from_name:
            ignored[str(result.get("from_name"))] += 1
            continue
        value = result.get("value") or {}
        spans += _value_spans(value, value.get("labels") or [], label_map)
    return spans, ignored


def _value_spans(value: Mapping[str, Any], labels: list, label_map) -> list[RawSpan]:
    mapped = [m for m in (map_label(str(label), label_map) for label in labels) if m is not None]
    if not mapped:
        return []
    return [RawSpan(value.get("start"), value.get("end"), mapped[0], value.get("text"), tuple(mapped))]


def read_labelstudio(path: str | Path, schema: LabelSchema, label_map=None) -> Corpus:
    """A full Label Studio JSON export (a list of tasks with `data` and `annotations`)."""
    path = Path(path)
    tasks = _load_json(path)
    problems = _Problems(path)
    if not isinstance(tasks, list):
        raise AnnotationError([f"{path}: a Label Studio JSON export is a list of tasks, got {type(tasks).__name__}"])
    documents = []
    for index, task in enumerate(tasks):
        task_id = task.get("id", f"#{index}") if isinstance(task, dict) else f"#{index}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.error(task_id, None, "not a task object with a 'data' dict")
            continue
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            problems.warn(task_id, None, "no (non-cancelled) annotation: task skipped")
            continue
        chosen = max(annotations, key=_annotation_rank)
        if len(annotations) > 1:
            problems.warn(task_id, None, f"{len(annotations)} annotations: using annotation {chosen.get('id')} (rule in GUIDELINES.md)")
        data = task["data"]
        source = str(data.get("source") or data.get("file") or "")
        spans, ignored = _result_spans(chosen.get("result") or [], schema, label_map)
        for control, count in ignored.items():
            problems.warn(task_id, None, f"{count} 'labels' result(s) of control {control!r} ignored: the labeling "
                                         f"config's <Labels> is named {schema.from_name!r}")
        documents.append(
            build_document(data.get(schema.text_key), spans, task_id=task_id, source=source,
                           problems=problems, schema_labels=schema.labels)
        )
    return _finish(documents, problems)


def read_labelstudio_min(path: str | Path, schema: LabelSchema, label_map=None) -> Corpus:
    """A Label Studio JSON-MIN export: one flat row per annotation, data keys at top level,
    spans under the `<Labels name>` key."""
    path = Path(path)
    rows = _load_json(path)
    problems = _Problems(path)
    if not isinstance(rows, list):
        raise AnnotationError([f"{path}: a JSON-MIN export is a list of rows, got {type(rows).__name__}"])
    by_task: dict[Any, list[dict]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.error(f"#{index}", None, "row is not an object")
            continue
        by_task.setdefault(row.get("id", f"#{index}"), []).append(row)
    documents = []
    for task_id, task_rows in by_task.items():
        chosen = max(task_rows, key=_annotation_rank)
        if len(task_rows) > 1:
            problems.warn(task_id, None, f"{len(task_rows)} annotations: using annotation {chosen.get('annotation_id')}")
        values = chosen.get(schema.from_name)
        if values is None:
            problems.warn(task_id, None, "no annotation: task skipped")
            continue
        spans: list[RawSpan] = []
        for value in values if isinstance(values, list) else []:
            if isinstance(value, dict):
                spans += _value_spans(value, value.get("labels") or [], label_map)
        source = str(chosen.get("source") or chosen.get("file") or "")
        documents.append(
            build_document(chosen.get(schema.text_key), spans, task_id=task_id, source=source,
                           problems=problems, schema_labels=schema.labels)
        )
    return _finish(documents, problems)


def _tagged_document(
    words: list[str], tags: list[str], *, doc_id: str, source: str, problems: _Problems,
    label_map, schema_labels: tuple[str, ...] | None,
) -> Document | None:
    """Pre-segmented words (syllables joined by `_`) and IOB2 tags -> Document whose text
    holds the syllables separated by spaces and whose `words` keep the segmentation."""
    if len(words) != len(tags):
        problems.error(doc_id, None, f"{len(words)} words but {len(tags)} tags")
        return None
    if not words:
        problems.error(doc_id, None, "empty sentence")
        return None
    mapped: list[str] = []
    for word, tag in zip(words, tags):
        try:
            prefix, label = split_tag(tag)
        except ValueError:
            problems.error(doc_id, None, f"word {word!r} has tag {tag!r}, which is not IOB2 (B-X, I-X or O)")
            return None
        target = map_label(label, label_map) if prefix != "O" else None
        mapped.append("O" if target is None else f"{prefix}-{target}")
    if not is_valid_iob2(mapped):
        problems.warn(doc_id, None, "I- tag without a preceding B- of its type: read as B- (repair rule)")
    pieces, ranges, position = [], [], 0
    for word in words:
        parts = word.split("_")
        surface = " ".join(parts) if all(parts) else word
        if not surface.strip() or surface != surface.strip():
            problems.error(doc_id, None, f"word {word!r} is empty or has whitespace at its edge")
            return None
        pieces.append(surface)
        ranges.append((position, position + len(surface)))
        position += len(surface) + 1
    text = " ".join(pieces)
    spans = tags_to_spans(ranges, mapped, text)
    bad = [s for s in spans if schema_labels is not None and s.label not in schema_labels]
    for span in bad:
        problems.error(doc_id, None, f"span [{span.start}:{span.end}] {span.text!r}: label {span.label!r} is not in the schema {list(schema_labels)}")
    norm = normalize_nfc(text)
    if norm.to_original is not None:
        ranges = [(norm.nfc_index(s), norm.nfc_index(e)) for s, e in ranges]
        spans = [Span(norm.nfc_index(s.start), norm.nfc_index(s.end), s.label) for s in spans]
        spans = [Span(s.start, s.end, s.label, norm.text[s.start:s.end]) for s in spans]
    return Document(id=doc_id, text=norm.text, spans=spans, source=source, words=[ranges])


def read_conll(path: str | Path, schema_labels: tuple[str, ...] | None = None, label_map=None,
               tag_column: int = -1) -> Corpus:
    """CoNLL: `word ... TAG` per line (the tag in `tag_column`), a blank line between
    sentences, `-DOCSTART-` lines ignored. One Document per sentence."""
    path = Path(path)
    problems = _Problems(path)
    documents: list[Document | None] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 1

    def flush(line_no: int) -> None:
        nonlocal words, tags
        if words:
            documents.append(_tagged_document(
                words, tags, doc_id=f"line {first_line}", source=path.name, problems=problems,
                label_map=label_map, schema_labels=schema_labels))
        words, tags = [], []

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError([f"{path}: cannot read: {exc}"]) from exc
    for line_no, line in enumerate(lines, start=1):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            flush(line_no)
            first_line = line_no + 1
            continue
        if len(columns) < 2:
            problems.error(f"line {line_no}", None, f"expected 'word TAG', got {line!r}")
            continue
        if not words:
            first_line = line_no
        words.append(columns[0])
        tags.append(columns[tag_column])
    flush(len(lines) + 1)
    return _finish(documents, problems)


def read_jsonl(path: str | Path, schema_labels: tuple[str, ...] | None = None, label_map=None) -> Corpus:
    """JSON lines `{"words": [...], "tags": [...]}`, one sentence per line."""
    path = Path(path)
    problems = _Problems(path)
    documents: list[Document | None] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError([f"{path}: cannot read: {exc}"]) from exc
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.error(f"line {line_no}", None, f"invalid JSON: {exc}")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("words"), list) or not isinstance(record.get("tags"), list):
            problems.error(f"line {line_no}", None, "expected an object with 'words' and 'tags' lists")
            continue
        documents.append(_tagged_document(
            [str(w) for w in record["words"]], [str(t) for t in record["tags"]], doc_id=f"line {line_no}",
            source=path.name, problems=problems, label_map=label_map, schema_labels=schema_labels))
    return _finish(documents, problems)


def detect_format(path: str | Path) -> str:
    path = Path(path)
    if path.suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix in (".conll", ".txt", ".tsv", ".iob", ".bio"):
        return "conll"
    data = _load_json(path)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "data" in data[0]:
        return "labelstudio"
    return "labelstudio-min"


def read_corpus(path: str | Path, fmt: str = "auto", schema: LabelSchema | None = None,
                label_map: Mapping[str, str | None] | None = None, tag_column: int = -1) -> Corpus:
    """Read any supported format. With `schema`, labels outside it are errors; for
    CoNLL/JSON lines without a schema the label set comes from the data."""
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "labelstudio":
        return read_labelstudio(path, schema or LabelSchema(), label_map)
    if fmt == "labelstudio-min":
        return read_labelstudio_min(path, schema or LabelSchema(), label_map)
    labels = schema.labels if schema is not None else None
    if fmt == "conll":
        return read_conll(path, labels, label_map, tag_column)
    if fmt == "jsonl":
        return read_jsonl(path, labels, label_map)
    raise ValueError(f"unknown data format {fmt!r}; known: auto, {', '.join(FORMATS)}")
