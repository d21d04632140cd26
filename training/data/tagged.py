"""Pre-segmented corpora: CoNLL (`word TAG` lines) and JSON lines (`{"words", "tags"}`),
words with syllables joined by `_` as in VLSP 2016 and PhoNER_COVID19. One Document
per sentence; its `words` keep the corpus's segmentation.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..text.bio import is_valid_iob2, split_tag, tags_to_spans
from ..text.documents import Document, Span, normalize_nfc
from .validation import AnnotationError, Corpus, Problems, finish, map_label, read_text, short, type_name


def _tagged_document(
    words: list[str], tags: list[str], *, doc_id: str, source: str, problems: Problems,
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
        problems.error(doc_id, None, f"span [{span.start}:{span.end}] {span.text!r}: label {span.label!r} is not "
                                     f"in the schema {list(schema_labels)}")
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
    problems = Problems(path)
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

    lines = _lines(read_text(path))
    for line_no, line in enumerate(lines, start=1):
        columns = _columns(line)
        if not columns or columns[0] == "-DOCSTART-":
            flush(line_no)
            first_line = line_no + 1
            continue
        if len(columns) < 2 or not -len(columns) <= tag_column < len(columns):
            problems.error(f"line {line_no}", None, f"expected 'word TAG' (tag in column {tag_column}), got {line!r}")
            continue
        if not words:
            first_line = line_no
        words.append(columns[0])
        tags.append(columns[tag_column])
    flush(len(lines) + 1)
    return _nonempty(finish(documents, problems), path, "sentence")


def _lines(text: str) -> list[str]:
    """Lines ended by \\n, \\r\\n or \\r only: str.splitlines() also breaks at U+2028 and
    U+0085, which JSON written with ensure_ascii=False keeps raw inside strings."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _columns(line: str) -> list[str]:
    """Tab-separated when the line has a tab (a word may then hold spaces and must not be
    cut at them), else whitespace-separated."""
    if "\t" in line:
        return [c.strip() for c in line.split("\t") if c.strip()]
    return line.split()


def _nonempty(corpus: Corpus, path: Path, what: str) -> Corpus:
    """A file that yields nothing is an error, not an empty corpus that trains on nothing."""
    if not corpus.documents:
        raise AnnotationError([f"{path}: no {what} in the file", *corpus.warnings])
    return corpus


def _record_problem(record) -> str | None:
    """Why a JSON-lines record is not `{"words": [str...], "tags": [str...]}`, or None."""
    if not isinstance(record, dict):
        return f"expected an object with 'words' and 'tags', got {type_name(record)}"
    for key in ("words", "tags"):
        value = record.get(key)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return f"{key!r} must be a list of strings, got {short(value, repr)}"
    return None


def read_jsonl(path: str | Path, schema_labels: tuple[str, ...] | None = None, label_map=None) -> Corpus:
    """JSON lines `{"words": [...], "tags": [...]}`, one sentence per line."""
    path = Path(path)
    problems = Problems(path)
    documents: list[Document | None] = []
    for line_no, line in enumerate(_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            problems.error(f"line {line_no}", None, "invalid JSON: nested too deeply")
            continue
        except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
            problems.error(f"line {line_no}", None, f"invalid JSON: {exc}")
            continue
        problem = _record_problem(record)
        if problem is not None:
            problems.error(f"line {line_no}", None, problem)
            continue
        documents.append(_tagged_document(
            record["words"], record["tags"], doc_id=f"line {line_no}",
            source=path.name, problems=problems, label_map=label_map, schema_labels=schema_labels))
    return _nonempty(finish(documents, problems), path, "record")


