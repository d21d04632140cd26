"""What every reader shares: the corpus it returns, the problems it collects, and the
check of spans against their text.

Every reader reports *every* problem at once, each naming the file, the task (or line)
and the span. Fixable problems (whitespace at a span's edge, exact duplicate spans) are
fixed and reported as warnings; the rest raise `AnnotationError`. Text is normalised to
NFC and offsets are mapped with it, so an NFD export gives the same documents as an NFC
one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..text.documents import Document, Span, normalize_nfc


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


class Problems:
    """Errors and warnings of one file, each prefixed with the file, task and span."""

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
    problems: Problems,
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


def finish(documents: list[Document | None], problems: Problems) -> Corpus:
    """The corpus of the documents read, or AnnotationError listing every error."""
    if problems.errors:
        raise AnnotationError(problems.errors)
    return Corpus([d for d in documents if d is not None], problems.warnings)


