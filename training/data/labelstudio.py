"""Label Studio exports: the full JSON export and JSON-MIN.

Choosing one annotation of a task (documented in annotations/GUIDELINES.md): cancelled
(skipped) annotations are ignored; among the rest a `ground_truth` one wins, then the
most recently updated (`updated_at`, else `created_at`), then the highest id. A task
with no usable annotation is skipped with a warning: unlabelled is not "no entities".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..text.schema import LabelSchema
from .validation import AnnotationError, Corpus, Problems, RawSpan, build_document, finish, map_label


def load_json(path: Path) -> Any:
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
    tasks = load_json(path)
    problems = Problems(path)
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
    return finish(documents, problems)


def read_labelstudio_min(path: str | Path, schema: LabelSchema, label_map=None) -> Corpus:
    """A Label Studio JSON-MIN export: one flat row per annotation, data keys at top level,
    spans under the `<Labels name>` key."""
    path = Path(path)
    rows = load_json(path)
    problems = Problems(path)
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
    return finish(documents, problems)


