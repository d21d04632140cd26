"""What every reader shares: the corpus it returns, the problems it collects, and the
check of spans against their text.

Every reader reports *every* problem at once, each naming the file, the task (or line)
and the span. Fixable problems (whitespace at a span's edge, exact duplicate spans) are
fixed and reported as warnings; the rest raise `AnnotationError`. Text is normalised to
NFC and offsets are mapped with it, so an NFD export gives the same documents as an NFC
one. Files are read as UTF-8 with an optional BOM; a file that cannot be read at all
(bad bytes, broken JSON) raises AnnotationError with one line saying why.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..text.documents import Document, Span, normalize_nfc
from ..text.segmentation import invisible


def capped(lines: list[str], limit: int) -> list[str]:
    """At most `limit` lines of a message, and how many more there were."""
    return lines if len(lines) <= limit else [*lines[:limit], f"... and {len(lines) - limit} more"]


class AnnotationError(ValueError):
    """Invalid annotations; `problems` lists one line per problem."""

    SHOWN = 50  # a file read in the wrong format has a problem on every line

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} annotation problem(s):\n  " + "\n  ".join(capped(problems, self.SHOWN)))


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


def short(value: Any, show=str, limit: int = 60) -> str:
    """A value for a message, on one printable line and cut to `limit` characters: a
    hostile file can put line breaks in an id or a huge structure where an offset belongs."""
    text = show(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else repr(value)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= limit else text[:limit] + "..."


def type_name(value: Any) -> str:
    """`null`, `a list`, ...: how JSON calls the type of a value, for messages."""
    if value is None:
        return "null"
    name = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value))
    return name or ("a number" if isinstance(value, (int, float)) else type(value).__name__)


class Problems:
    """Errors and warnings of one file, each prefixed with the file, task, annotation and
    span."""

    def __init__(self, path: Path):
        self.path = path
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def where(self, task: Any, span: RawSpan | None = None, annotation: Any = None) -> str:
        where = f"{self.path}: task {short(task)}"
        if annotation is not None:
            where += f": annotation {short(annotation)}"
        if span is not None:
            where += f": span [{short(span.start)}:{short(span.end)}]"
            where += f" {short(span.text, repr, 200)}" if span.text is not None else ""
            where += f" ({short(span.label)})" if span.label else ""
        return where

    def error(self, task: Any, span: RawSpan | None, reason: str, annotation: Any = None) -> None:
        self.errors.append(f"{self.where(task, span, annotation)}: {reason}")

    def warn(self, task: Any, span: RawSpan | None, reason: str, annotation: Any = None) -> None:
        self.warnings.append(f"{self.where(task, span, annotation)}: {reason}")

    def at(self, task: Any, annotation: Any = None) -> "At":
        return At(self, task, annotation)


@dataclass(frozen=True)
class At:
    """Problems bound to one task (and annotation): what the per-result code reports to."""

    problems: Problems
    task: Any
    annotation: Any = None

    def error(self, reason: str, span: RawSpan | None = None) -> None:
        self.problems.error(self.task, span, reason, self.annotation)

    def warn(self, reason: str, span: RawSpan | None = None) -> None:
        self.problems.warn(self.task, span, reason, self.annotation)


def read_text(path: Path) -> str:
    """A file's text; a UTF-8 byte-order mark is dropped (editors on Windows add one)."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError([f"{path}: cannot read: {exc}"]) from exc


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json's default keeps the last of two equal keys, silently losing the first."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            shown = [repr(v)[:40] for v in (seen[key], value)]
            raise ValueError(f"key {key!r} appears twice in one object ({shown[0]} and {shown[1]})")
        seen[key] = value
    return seen


def load_json(path: str | Path) -> Any:
    """The JSON value of a file (a UTF-8 BOM is allowed), or AnnotationError in one line."""
    text = read_text(Path(path))
    if not text.strip():
        raise AnnotationError([f"{path}: cannot read JSON: the file is empty"])
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # lone surrogates cannot be printed
    except RecursionError:
        raise AnnotationError([f"{path}: cannot read JSON: nested too deeply"]) from None
    except UnicodeEncodeError as exc:
        raise AnnotationError([f"{path}: cannot read JSON: it holds a lone surrogate {exc.object[exc.start]!r} "
                               "(a \\uD800-\\uDFFF escape without its pair), which is not Unicode text"]) from None
    except ValueError as exc:  # JSONDecodeError, a duplicate key, an integer too long to convert
        raise AnnotationError([f"{path}: cannot read JSON: {exc}"]) from None
    return data


def map_label(label: str, label_map: Mapping[str, str | None] | None) -> str | None:
    """With a label map, types it does not name become O (None); an explicit None/"O"
    drops a type too. Without one, labels pass unchanged."""
    if not label_map:
        return label
    target = label_map.get(label)
    return None if target in (None, "O", "") else target


def _offsets_problem(raw: RawSpan, length: int) -> str | None:
    """Why `raw`'s offsets cannot be used on a text of `length` characters, or None.
    Offsets must be JSON integers: a string or float offset means the export was edited
    or made by another tool, and guessing a conversion could shift every span."""
    for name, offset in (("start", raw.start), ("end", raw.end)):
        if not isinstance(offset, int) or isinstance(offset, bool):
            return f"{name} is {type_name(offset)} ({short(offset, repr)}), not an integer"
    if raw.start < 0:
        return "offsets out of range: start is negative"
    if raw.end <= raw.start:
        return "offsets out of range: end is not after start (empty or reversed span)"
    if raw.end > length:
        return f"offsets out of range: end is past the end of the text ({length} characters)"
    return None


def _checked_span(text: str, raw: RawSpan, schema_labels, at: At) -> tuple[int, int] | None:
    """The span's (trimmed) offsets in the original text, or None after reporting why not."""
    if len(raw.labels) > 1:
        at.error(f"one span carries several labels {list(raw.labels)}", raw)
        return None
    if schema_labels is not None and raw.label not in schema_labels:
        at.error(f"label {raw.label!r} is not in the schema {list(schema_labels)}", raw)
        return None
    problem = _offsets_problem(raw, len(text))
    if problem is not None:
        at.error(problem, raw)
        return None
    covered = text[raw.start:raw.end]
    if raw.text is not None and covered != raw.text:
        at.error(f"text[start:end] is {covered!r}, not the span text", raw)
        return None
    # Zero-width and control characters are never part of a word (the segmenter drops
    # them), so a span that starts or ends on one could not be aligned to words.
    head = next((i for i, char in enumerate(covered) if not invisible(char)), None)
    if head is None:
        at.error("span covers only whitespace or invisible characters", raw)
        return None
    tail = next(i for i, char in enumerate(reversed(covered)) if not invisible(char))
    start, end = raw.start + head, raw.end - tail
    if (start, end) != (raw.start, raw.end):
        trimmed = covered[:head] + covered[len(covered) - tail:]
        what = "whitespace" if trimmed.isspace() else f"whitespace or invisible characters {trimmed!r}"
        at.warn(f"{what} at the edge trimmed to [{start}:{end}]", raw)
    return start, end


def _flat(spans: list[Span], at: At) -> list[Span]:
    """Exact duplicates dropped (warning); overlapping spans are errors (spans are flat)."""
    kept: list[Span] = []
    reach: Span | None = None  # the kept span that ends last: in start order, the only one to check
    for span in sorted(spans):
        if kept and (span.start, span.end, span.label) == (kept[-1].start, kept[-1].end, kept[-1].label):
            at.warn(f"duplicate span [{span.start}:{span.end}] {span.text!r} ({span.label}) dropped")
            continue
        clash = reach if reach is not None and reach.overlaps(span) else None
        if clash is not None:
            at.error(f"span [{span.start}:{span.end}] {span.text!r} ({span.label}) overlaps "
                     f"[{clash.start}:{clash.end}] {clash.text!r} ({clash.label}); spans must be flat")
            continue
        kept.append(span)
        reach = span if reach is None or span.end > reach.end else reach
    return kept


def build_document(
    text: Any,
    raw_spans: Iterable[RawSpan],
    *,
    task_id: Any,
    source: str,
    problems: Problems,
    schema_labels: tuple[str, ...] | None,
    annotation: Any = None,
) -> Document | None:
    """Validate spans against the original text, then normalise to NFC."""
    at = problems.at(task_id, annotation)
    if not isinstance(text, str) or not text.strip():
        kind = "empty" if isinstance(text, str) else f"{type_name(text)}, not a string" if text is not None else "missing"
        at.error(f"task text is {kind}")
        return None
    norm = normalize_nfc(text)
    spans: list[Span] = []
    for raw in raw_spans:
        offsets = _checked_span(text, raw, schema_labels, at)
        if offsets is None:
            continue
        s, e = norm.nfc_index(offsets[0]), norm.nfc_index(offsets[1])
        if norm.text[s:e] != unicodedata.normalize("NFC", text[offsets[0]:offsets[1]]):
            # an edge between a letter and its combining mark (NFD text): NFC makes them one character
            if s == e:
                at.error("span covers only part of a character (combining marks without their letter)", raw)
                continue
            at.warn(f"an edge falls inside a character (a letter and its combining mark): read as "
                    f"[{s}:{e}] {norm.text[s:e]!r} of the NFC text", raw)
        spans.append(Span(s, e, raw.label, norm.text[s:e]))
    return Document(id=str(task_id), text=norm.text, spans=_flat(spans, at), source=source)


def finish(documents: list[Document | None], problems: Problems, unit: str | None = None) -> Corpus:
    """The corpus of the documents read, or AnnotationError listing every error. With
    `unit` (`sentence`...), a file that yields none is an error too: a corpus file with
    nothing in it is a mistake, while a Label Studio export may have no usable task yet."""
    if problems.errors:
        raise AnnotationError(problems.errors)
    kept = [d for d in documents if d is not None]
    if unit is not None and not kept:
        raise AnnotationError([f"{problems.path}: no {unit} in the file", *problems.warnings])
    return Corpus(kept, problems.warnings)
