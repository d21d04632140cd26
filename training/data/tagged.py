"""Pre-segmented corpora: CoNLL (`word TAG` lines) and JSON lines (`{"words", "tags"}`),
words with syllables joined by `_` as in VLSP 2016 and PhoNER_COVID19. One Document
per sentence; its `words` keep the corpus's segmentation.

A CoNLL file is read as a table: tab-separated when any line holds a tab (a word may then
contain spaces), else separated by spaces only (a no-break space belongs to its word),
and every line must have as many columns as the first, so that a word with spaces in a
space-separated file is an error instead of a word cut short. With more than two
columns (VLSP 2016: word, POS, chunk, entity, nested entity) the tag column is the
first after the word whose values are all IOB2 tags and mostly `O`, which skips a chunk
column and prefers the outer entity level; the choice is reported, and
`data.tag_column` sets it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..text.bio import repair_tags, split_tag, tags_to_spans
from ..text.documents import Document, Span, normalize_nfc, split_lines
from .validation import AnnotationError, Corpus, Problems, finish, map_label, read_text, short, type_name


class _MappedToO:
    """Entities of the types a label map makes O, counted over a file, reported once."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def report(self, problems: Problems) -> None:
        if self.counts:
            types = ", ".join(f"{label} ({count})" for label, count in self.counts.most_common())
            problems.warnings.append(f"{problems.path}: {sum(self.counts.values())} entities of type(s) the label "
                                     f"map makes O dropped: {types}")


def _tagged_document(
    words: list[str], tags: list[str], *, doc_id: str, source: str, problems: Problems,
    label_map, schema_labels: tuple[str, ...] | None, dropped: _MappedToO, places: list[str] | None = None,
) -> Document | None:
    """Pre-segmented words (syllables joined by `_`) and IOB2 tags -> Document whose text
    holds the syllables separated by spaces and whose `words` keep the segmentation.
    `places` names each word's line for messages (CoNLL); else `doc_id` does."""
    if len(words) != len(tags):
        problems.error(doc_id, None, f"{len(words)} words but {len(tags)} tags")
        return None
    if not words:
        problems.error(doc_id, None, "empty sentence")
        return None
    places = places or [doc_id] * len(words)
    broken = False
    for word, tag, place in zip(words, tags, places):
        if not _is_tag(tag):
            problems.error(place, None, f"word {word!r} has tag {tag!r}, which is not IOB2 (B-X, I-X or O)")
            broken = True
    if broken:
        return None
    repaired = repair_tags(tags)  # the one repair rule (text/bio.py), applied before the label map
    mapped: list[str] = []
    for word, tag, fixed, place in zip(words, tags, repaired, places):
        prefix, label = split_tag(fixed)
        if fixed != tag:
            problems.warn(place, None, f"word {word!r}: {tag} does not continue an entity of its type: "
                                       f"read as {fixed} (repair rule)")
        target = map_label(label, label_map) if prefix != "O" else None
        if prefix == "B" and target is None:
            dropped.counts[label] += 1
        mapped.append("O" if target is None else f"{prefix}-{target}")
    pieces, ranges, position = [], [], 0
    for word, place in zip(words, places):
        parts = word.split("_")
        surface = " ".join(parts) if all(parts) else word
        if not surface.strip() or surface != surface.strip():
            problems.error(place, None, f"word {word!r} is empty or has whitespace at its edge")
            return None
        pieces.append(surface)
        ranges.append((position, position + len(surface)))
        position += len(surface) + 1
    text = " ".join(pieces)
    spans = tags_to_spans(ranges, mapped, text)
    if schema_labels is not None:
        starts = {start: place for (start, _), place in zip(ranges, places)}
        for span in spans:
            if span.label not in schema_labels:
                problems.error(starts[span.start], None, f"entity {span.text!r}: label {span.label!r} is not in "
                                                         f"the schema {list(schema_labels)}")
    norm = normalize_nfc(text)
    if norm.to_original is not None:
        ranges = [(norm.nfc_index(s), norm.nfc_index(e)) for s, e in ranges]
        spans = [Span(norm.nfc_index(s.start), norm.nfc_index(s.end), s.label) for s in spans]
        spans = [Span(s.start, s.end, s.label, norm.text[s.start:s.end]) for s in spans]
    return Document(id=doc_id, text=norm.text, spans=spans, source=source, words=[ranges])


def _is_tag(value: str) -> bool:
    try:
        split_tag(value)
    except ValueError:
        return False
    return True


def _find_tag_column(rows: list[list[str]], width: int, problems: Problems) -> int | None:
    """The tag column of a CoNLL table with `width` columns (rule in the module docstring)."""
    if width == 2:
        return 1
    for column in range(1, width):
        values = [row[column] for row in rows]
        if all(_is_tag(v) for v in values) and 2 * values.count("O") > len(values):
            problems.warnings.append(
                f"{problems.path}: {width} columns; entity tags read from column {column} (0-based: the first "
                "after the word whose values are all IOB2 tags, mostly O); set data.tag_column to read another")
            return column
    problems.errors.append(
        f"{problems.path}: {width} columns and none after the word holds only IOB2 tags, mostly O (first line's "
        f"columns: {short(' '.join(rows[0][1:]), limit=120)}); set data.tag_column to the 0-based column of the entity tags")
    return None


def _table(lines: list[str]) -> tuple[list[tuple[int, list[str] | None]], int]:
    """Each line as (line number, columns), None for a sentence break (a blank or
    `-DOCSTART-` line), and the file's column count (that of its first line)."""
    tabs = any("\t" in line for line in lines)
    table: list[tuple[int, list[str] | None]] = []
    width = 0
    for line_no, line in enumerate(lines, start=1):
        if tabs:
            columns = [c.strip() for c in line.split("\t") if c.strip()]
        else:
            columns = [c for c in line.strip(" ").split(" ") if c]
        if not line.strip() or columns[0] == "-DOCSTART-":
            table.append((line_no, None))
            continue
        width = width or len(columns)
        table.append((line_no, columns))
    return table, width


def read_conll(path: str | Path, schema_labels: tuple[str, ...] | None = None, label_map=None,
               tag_column: int | None = None) -> Corpus:
    """CoNLL: `word ... TAG` per line, a blank line between sentences, `-DOCSTART-`
    lines ignored; `tag_column` None finds the tag column (module docstring). One
    Document per sentence, named by its first line."""
    path = Path(path)
    problems = Problems(path)
    text = read_text(path)
    _not_json(path, text, "CoNLL")
    table, width = _table(split_lines(text))
    rows = []
    for line_no, columns in table:
        if columns is None:
            continue
        if len(columns) != width:
            problems.error(f"line {line_no}", None, f"{len(columns)} column(s), but the file's first line has "
                           f"{width}: {short(' | '.join(columns), limit=120)} (in a file without tabs, columns are "
                           "separated by spaces, so a word cannot contain one: join its syllables with _)")
        else:
            rows.append(columns)
    if width == 1:
        problems.errors.append(f"{path}: expected 'word TAG' lines, but the first line has one column")
    column = tag_column
    if column is None and rows and width >= 2:
        column = _find_tag_column(rows, width, problems)
    elif column is not None and not -width <= column < width:
        problems.errors.append(f"{path}: data.tag_column is {column}, but the lines have {width} columns")
        column = None
    if problems.errors:
        raise AnnotationError(problems.errors)
    dropped = _MappedToO()
    documents: list[Document | None] = []
    sentence: list[tuple[int, list[str]]] = []
    for line_no, columns in [*table, (len(table) + 1, None)]:
        if columns is not None:
            sentence.append((line_no, columns))
            continue
        if sentence:
            documents.append(_tagged_document(
                [c[0] for _, c in sentence], [c[column] for _, c in sentence], doc_id=f"line {sentence[0][0]}",
                source=path.name, problems=problems, label_map=label_map, schema_labels=schema_labels,
                dropped=dropped, places=[f"line {n}" for n, _ in sentence]))
        sentence = []
    dropped.report(problems)
    return finish(documents, problems, "sentence")


def _not_json(path: Path, text: str, expected: str) -> None:
    """A JSON export read as a line format fails on every line; say what it is instead."""
    if text.lstrip().startswith(("[", "{")):
        raise AnnotationError([f"{path}: this is JSON, not {expected} (a Label Studio export is read with format "
                               "labelstudio, or auto)"])


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
    dropped = _MappedToO()
    documents: list[Document | None] = []
    text = read_text(path)
    if text.lstrip().split("\n", 1)[0].strip() in ("[", "[{"):  # an indented JSON array, not one record a line
        _not_json(path, text, "JSON lines")
    for line_no, line in enumerate(split_lines(text), start=1):
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
            record["words"], record["tags"], doc_id=f"line {line_no}", source=path.name, problems=problems,
            label_map=label_map, schema_labels=schema_labels, dropped=dropped))
    dropped.report(problems)
    return finish(documents, problems, "record")


