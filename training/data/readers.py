"""Read any supported annotation format into Documents with character spans.

Label Studio exports (JSON, JSON-MIN: `labelstudio.py`), CoNLL and JSON lines
(`tagged.py`); what they share, and how problems are reported, is in `validation.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..text.schema import LabelSchema
from .labelstudio import is_full_export, read_labelstudio, read_labelstudio_min
from .tagged import read_conll, read_jsonl
from .validation import AnnotationError, Corpus, load_json

__all__ = ["FORMATS", "AnnotationError", "Corpus", "detect_format", "read_corpus"]

FORMATS = ("labelstudio", "labelstudio-min", "conll", "jsonl")


def detect_format(path: str | Path) -> str:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".conll", ".txt", ".tsv", ".iob", ".iob2", ".bio"):
        return "conll"
    if suffix == ".csv":
        raise AnnotationError([f"{path}: CSV exports are not read (they flatten the spans); export JSON or "
                               "JSON-MIN from Label Studio"])
    data = load_json(path)
    # Every item is looked at: one task without `data` must not turn a full export
    # into JSON-MIN. What is neither goes to the full reader, whose errors are clearest.
    if is_full_export(data) or not isinstance(data, list) or not any(isinstance(i, dict) for i in data):
        return "labelstudio"
    return "labelstudio-min"


def read_corpus(path: str | Path, fmt: str = "auto", schema: LabelSchema | None = None,
                label_map: Mapping[str, str | None] | None = None, tag_column: int | None = None) -> Corpus:
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
