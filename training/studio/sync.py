"""Pure helpers of the sync commands (no network): task files, task identity,
entities -> Label Studio results, and the diff between two exports."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..text.schema import LabelConfigError, LabelSchema, parse_labeling_config
from .errors import StudioError


# -- tasks ----------------------------------------------------------------------------------
def load_tasks(paths: Sequence[str | Path], text_key: str = "text") -> list[dict]:
    """Tasks to import: a JSON list of `{"data": {...}}` (or of bare data dicts), or plain
    `.txt` files (one task each: the file's text, `source` = the file name)."""
    tasks: list[dict] = []
    for path in map(Path, paths):
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StudioError(f"{path}: cannot read tasks: {exc}") from exc
        if path.suffix.lower() != ".json":
            if not raw.strip():
                raise StudioError(f"{path}: empty text file")
            tasks.append({"data": {text_key: raw, "source": path.name}})
            continue
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StudioError(f"{path}: invalid JSON: {exc}") from exc
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise StudioError(f"{path}: expected a list of tasks, got {type(items).__name__}")
        for index, item in enumerate(items):
            data = item.get("data") if isinstance(item, dict) and "data" in item else item
            if not isinstance(data, dict) or not isinstance(data.get(text_key), str) or not data[text_key].strip():
                raise StudioError(f"{path}: task #{index} has no non-empty data.{text_key}")
            tasks.append({"data": dict(data)})
    return tasks


def task_key(data: Mapping[str, Any], text_key: str = "text") -> str:
    """A task's identity for de-duplication: `data.source` when set, else a hash of the text."""
    source = data.get("source")
    if source:
        return f"source:{source}"
    text = str(data.get(text_key) or "")
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_tasks(tasks: Iterable[dict], existing_keys: set[str], text_key: str = "text") -> tuple[list[dict], int]:
    """The tasks whose key is neither in the project nor earlier in `tasks`; and how many were skipped."""
    seen = set(existing_keys)
    fresh, skipped = [], 0
    for task in tasks:
        key = task_key(task["data"], text_key)
        if key in seen:
            skipped += 1
            continue
        seen.add(key)
        fresh.append(task)
    return fresh, skipped


# -- labeling configs -----------------------------------------------------------------------
def schema_from_xml(xml: str, where: str) -> LabelSchema:
    """Read a labeling config given as text (e.g. a project's) with the project's reader."""
    try:
        return parse_labeling_config(xml, where)
    except LabelConfigError as exc:
        raise StudioError(str(exc)) from exc


def missing_labels(project_schema: LabelSchema, needed: Iterable[str]) -> list[str]:
    return [label for label in needed if label not in project_schema.labels]


# -- predictions ----------------------------------------------------------------------------
def entities_to_result(entities: Iterable, schema: LabelSchema) -> list[dict]:
    """`Entity` objects -> Label Studio result items (the shape of a manual annotation)."""
    return [
        {
            "from_name": schema.from_name,
            "to_name": schema.to_name,
            "type": "labels",
            "value": {"start": e.start, "end": e.end, "text": e.text, "labels": [e.label]},
            "score": float(e.score),
        }
        for e in entities
    ]


def task_score(entities: Sequence) -> float:
    """A task's prediction score: the mean entity score, 1.0 when nothing was found.
    Low = uncertain; Label Studio's uncertainty sampling serves the lowest first."""
    if not entities:
        return 1.0
    return round(sum(float(e.score) for e in entities) / len(entities), 4)


# -- export diff ----------------------------------------------------------------------------
@dataclass
class ExportDiff:
    tasks_added: list[str] = field(default_factory=list)
    tasks_removed: list[str] = field(default_factory=list)
    spans_added: Counter = field(default_factory=Counter)
    spans_removed: Counter = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(self.tasks_added or self.tasks_removed or self.spans_added or self.spans_removed)

    def lines(self) -> list[str]:
        if not self.changed:
            return ["no change since the previous export"]
        lines = [f"tasks added: {len(self.tasks_added)}, removed: {len(self.tasks_removed)}"]
        for label in sorted(set(self.spans_added) | set(self.spans_removed)):
            lines.append(f"  {label}: +{self.spans_added.get(label, 0)} -{self.spans_removed.get(label, 0)} spans")
        return lines


def _span_index(documents) -> dict[str, Counter]:
    index: dict[str, Counter] = {}
    for doc in documents:
        key = f"source:{doc.source}" if doc.source else "sha256:" + hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
        index[key] = Counter((s.start, s.end, s.label) for s in doc.spans)
    return index


def diff_corpora(old_documents, new_documents) -> ExportDiff:
    """Tasks added/removed (by source or text hash) and spans added/removed per type."""
    old, new = _span_index(old_documents), _span_index(new_documents)
    diff = ExportDiff(sorted(set(new) - set(old)), sorted(set(old) - set(new)))
    for key in set(old) | set(new):
        before, after = old.get(key, Counter()), new.get(key, Counter())
        for (_, _, label), n in (after - before).items():
            diff.spans_added[label] += n
        for (_, _, label), n in (before - after).items():
            diff.spans_removed[label] += n
    return diff
