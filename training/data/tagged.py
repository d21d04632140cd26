"""Pre-segmented corpora: CoNLL (`word TAG` lines) and JSON lines (`{"words", "tags"}`),
words with syllables joined by `_` as in VLSP 2016 and PhoNER_COVID19. One Document
per sentence; its `words` keep the corpus's segmentation.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..text.bio import is_valid_iob2, split_tag, tags_to_spans
from ..text.documents import Document, Span, normalize_nfc
from .validation import AnnotationError, Corpus, Problems, finish, map_label


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
    return finish(documents, problems)


def read_jsonl(path: str | Path, schema_labels: tuple[str, ...] | None = None, label_map=None) -> Corpus:
    """JSON lines `{"words": [...], "tags": [...]}`, one sentence per line."""
    path = Path(path)
    problems = Problems(path)
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
    return finish(documents, problems)


