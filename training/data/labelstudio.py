"""Label Studio exports: the full JSON export and JSON-MIN.

Every annotation in the file becomes spans or is named in a warning or an error
(rules in annotations/GUIDELINES.md, "How the project reads your export"):

- Choosing one annotation of a task: cancelled (skipped) annotations and annotations
  without a `result` are set aside; among the rest a `ground_truth` one wins, then the
  most recently updated (`updated_at`, else `created_at`), then the highest id. A task
  with no usable annotation is skipped with a warning: unlabelled is not "no entities".
- A result that names a label becomes a span or stops the read with an error; one that
  names none (no `value`, `labels` missing, null or empty) carries no entity and is
  ignored with a warning. `"labels": "PER"` (a bare string) is read as one label, with a
  warning. `type` is compared case-insensitively. Results of other types (choices,
  textarea, relation...) are counted in one warning per task.
- JSON of the wrong shape anywhere is an error naming the file, task, annotation and
  result; never a traceback.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..text.schema import LabelSchema
from .validation import (At, AnnotationError, Corpus, Problems, RawSpan, build_document, finish, load_json,
                         map_label, short, type_name)

TASK_KEYS = ("data", "annotations", "predictions")  # any of them: a full export's task


def is_full_export(items: Any) -> bool:
    """A list in which any item is a dict holding `data`, `annotations` or `predictions`."""
    return isinstance(items, list) and any(isinstance(i, dict) and any(k in i for k in TASK_KEYS) for i in items)


def export_items(path: Path, data: Any) -> list:
    if not isinstance(data, list):
        raise AnnotationError([f"{path}: a Label Studio export is a list of tasks, got {type_name(data)}"])
    if not data:
        raise AnnotationError([f"{path}: no tasks: the export is an empty list"])
    return data


def _id_key(value: Any) -> tuple:
    """Orders ids of mixed types (ints, numeric strings, other strings) without a TypeError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (1, value, "")
    if isinstance(value, str) and value.isdecimal() and len(value) < 30:
        return (1, int(value), value)
    return (0, 0, str(value))


def _moment(value: Any) -> float:
    """An ISO 8601 time as seconds since the epoch (no zone: UTC); -inf when absent or
    unreadable. Compared as strings, `10:00+07:00` would be later than `05:00Z`."""
    if not isinstance(value, str):
        return -math.inf
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return -math.inf
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def annotation_rank(annotation: Mapping[str, Any], id_key: str) -> tuple:
    return (
        annotation.get("ground_truth") is True,
        _moment(annotation.get("updated_at") or annotation.get("created_at")),
        _id_key(annotation.get(id_key)),
    )


def _name(value: Any, fallback: str) -> str:
    """An annotation's id for messages."""
    return fallback if value is None else short(value)


def _task_id(item: dict, index: int, problems: Problems) -> Any:
    """The task's id (`#index` when absent); None after an error for an id of another type."""
    task_id = item.get("id")
    if task_id is None:
        return f"#{index}"
    if isinstance(task_id, str) or (isinstance(task_id, int) and not isinstance(task_id, bool)):
        return task_id
    problems.error(f"#{index}", None, f"task id {short(task_id, repr)} is {type_name(task_id)}, not an integer "
                                      "or a string")
    return None


def _choose(candidates: list[tuple[Any, dict]], set_aside: list[str], total: int, at: At,
            id_key: str = "id") -> tuple[Any, dict]:
    """The annotation the rule picks; `id_key` names the annotation id (JSON-MIN: `annotation_id`)."""
    ann_id, chosen = max(candidates, key=lambda c: annotation_rank(c[1], id_key))
    if total > 1:
        others = [f"{i}" for i, a in candidates if a is not chosen] + set_aside
        at.warn(f"{total} annotations: using annotation {ann_id}; not used: {', '.join(others)} (rule in GUIDELINES.md)")
    return ann_id, chosen


class _Reading:
    """The spans of one annotation, and what was set aside (counted, reported once)."""

    def __init__(self, at: At, schema: LabelSchema, label_map):
        self.at, self.schema, self.label_map = at, schema, label_map
        self.spans: list[RawSpan] = []
        self.other_types: Counter = Counter()
        self.other_controls: Counter = Counter()
        self.mapped_to_o: Counter = Counter()

    def result(self, index: int, result: Any) -> None:
        what = f"result #{index}"
        if not isinstance(result, dict):
            return self.at.error(f"{what} is {type_name(result)}, not an object")
        kind = result.get("type", "labels")
        if not isinstance(kind, str):
            return self.at.error(f"{what}: type {kind!r} is not a string")
        if kind.lower() != "labels":  # "Labels" is still a labels result
            self.other_types[kind] += 1
            return None
        control = result.get("from_name", self.schema.from_name)  # absent: the only <Labels>
        if control != self.schema.from_name:
            self.other_controls[repr(control)] += 1
            return None
        value = result.get("value")
        if value is None:
            return self.at.warn(f"{what} has no value (no offsets, no label): ignored")
        if not isinstance(value, dict):
            return self.at.error(f"{what}: value is {type_name(value)}, not an object")
        return self.value(what, value)

    def value(self, what: str, value: dict) -> None:
        """One `{start, end, text, labels}` value -> a RawSpan, or a warning/error why not."""
        raw = RawSpan(value.get("start"), value.get("end"), "", value.get("text"))
        labels = value.get("labels")
        if isinstance(labels, str):
            self.at.warn(f"{what}: 'labels' is the string {labels!r}, not a list: read as one label", raw)
            labels = [labels]
        if labels is None or labels == []:
            shown = "missing" if "labels" not in value else json.dumps(labels)
            return self.at.warn(f"{what} names no label ('labels' {shown}): ignored", raw)
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return self.at.error(f"{what}: 'labels' must be a list of strings, got {short(labels, repr)}", raw)
        mapped = [m for m in (map_label(label, self.label_map) for label in labels) if m is not None]
        if not mapped:
            self.mapped_to_o.update(labels)
            return None
        # the label list as written, so that a second label is an error even when the map drops it
        self.spans.append(RawSpan(raw.start, raw.end, mapped[0], raw.text, tuple(labels)))
        return None

    def report(self) -> None:
        """One warning for everything the annotation held that is not a span."""
        parts = [f"{count} 'labels' result(s) of control {control} ignored: the labeling config's <Labels> "
                 f"is named {self.schema.from_name!r}" for control, count in self.other_controls.items()]
        if self.other_types:
            parts.append(f"{sum(self.other_types.values())} non-span result(s) ({', '.join(self.other_types)}) ignored")
        if self.mapped_to_o:
            parts.append(f"{sum(self.mapped_to_o.values())} span(s) of type(s) the label map makes O "
                         f"({', '.join(self.mapped_to_o)}) dropped")
        if parts:
            self.at.warn("; ".join(parts))


def _usable_annotations(task: dict, task_id: Any, problems: Problems) -> tuple[Any, dict] | None:
    """The chosen (id, annotation) of a full-export task, or None after a warning/error."""
    at = problems.at(task_id)
    annotations = task.get("annotations")
    if annotations is not None and not isinstance(annotations, list):
        return at.error(f"'annotations' is {type_name(annotations)}, not a list")
    annotations = annotations or []
    candidates, set_aside, broken = [], [], False
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            at.error(f"annotation #{index} is {type_name(annotation)}, not an object")
            broken = True
            continue
        ann_id = _name(annotation.get("id"), f"#{index}")
        flags = {k: annotation.get(k) for k in ("was_cancelled", "ground_truth")}
        bad = [k for k, v in flags.items() if v is not None and not isinstance(v, bool)]
        result = annotation.get("result")
        if bad or (result is not None and not isinstance(result, list)):
            problems.error(task_id, None, f"{bad[0]} is {short(flags[bad[0]], repr)}, not true/false" if bad
                           else f"'result' is {type_name(result)}, not a list", ann_id)
            broken = True
        elif flags["was_cancelled"]:
            set_aside.append(f"{ann_id} (cancelled)")
        elif result is None:
            problems.warn(task_id, None, "no 'result' (missing or null): unlabelled, not 'no entities'; annotation "
                                         "skipped", ann_id)
            set_aside.append(f"{ann_id} (no result)")
        else:
            candidates.append((ann_id, annotation))
    if broken:
        return None
    if not candidates:
        predictions = task.get("predictions")
        extra = ""
        if isinstance(predictions, list) and predictions:
            extra = f"; {len(predictions)} prediction(s) not read (model output, not gold)"
        unused = f"not used: {', '.join(set_aside)}" if set_aside else "none in the file"
        return at.warn(f"no usable annotation ({unused}{extra}): task skipped; unlabelled is not 'no entities'")
    return _choose(candidates, set_aside, len(annotations), at)


def task_document(index: int, task: Any, schema: LabelSchema, label_map, problems: Problems):
    if not isinstance(task, dict):
        return problems.error(f"#{index}", None, f"item is {type_name(task)}, not a task object")
    task_id = _task_id(task, index, problems)
    if task_id is None:
        return None
    data = task.get("data")
    if not isinstance(data, dict):
        shown = "missing" if data is None else type_name(data)
        return problems.error(task_id, None, f"'data' is {shown}, not an object")
    if schema.text_key not in data:
        keys = short(", ".join(map(repr, data)), limit=200)
        return problems.error(task_id, None, f"data has no {schema.text_key!r} key (keys: {keys})")
    chosen = _usable_annotations(task, task_id, problems)
    if chosen is None:
        return None
    ann_id, annotation = chosen
    reading = _Reading(problems.at(task_id, ann_id), schema, label_map)
    for number, result in enumerate(annotation["result"]):
        reading.result(number, result)
    reading.report()
    source = str(data.get("source") or data.get("file") or "")
    return build_document(data[schema.text_key], reading.spans, task_id=task_id, source=source, problems=problems,
                          schema_labels=schema.labels, annotation=ann_id)


def warn_shared_ids(ids: list[Any], problems: Problems) -> None:
    for task_id, count in Counter(repr(i) for i in ids).items():
        if count > 1:
            problems.warn(next(i for i in ids if repr(i) == task_id), None,
                          f"{count} tasks share this id: each read as its own document")


def read_labelstudio(path: str | Path, schema: LabelSchema, label_map=None) -> Corpus:
    """A full Label Studio JSON export (a list of tasks with `data` and `annotations`)."""
    path = Path(path)
    tasks = export_items(path, load_json(path))
    min_keys = (schema.text_key, schema.from_name, "annotation_id")
    if not is_full_export(tasks) and any(isinstance(t, dict) and any(k in t for k in min_keys) for t in tasks):
        raise AnnotationError([f"{path}: this looks like a JSON-MIN export (no task has 'data' or 'annotations'); "
                               "use format labelstudio-min (or auto)"])
    problems = Problems(path)
    documents = [task_document(i, task, schema, label_map, problems) for i, task in enumerate(tasks)]
    warn_shared_ids([t.get("id") for t in tasks if isinstance(t, dict) and t.get("id") is not None], problems)
    return finish(documents, problems)


def _min_document(task_id: Any, rows: list[tuple[int, dict]], schema: LabelSchema, label_map, problems: Problems):
    """One JSON-MIN task (its rows are its annotations) -> Document, or None."""
    at = problems.at(task_id)
    named = [(_name(row.get("annotation_id"), f"row {n}"), row) for n, row in rows]
    candidates = [(ann_id, row) for ann_id, row in named if row.get("was_cancelled") is not True]
    set_aside = [f"{ann_id} (cancelled)" for ann_id, row in named if row.get("was_cancelled") is True]
    if not candidates:
        return at.warn("only cancelled annotations: task skipped")
    ann_id, chosen = _choose(candidates, set_aside, len(rows), at, "annotation_id")
    values = chosen.get(schema.from_name)
    if values is None:
        elsewhere = [repr(k) for k, v in chosen.items()
                     if isinstance(v, list) and any(isinstance(x, dict) and "labels" in x for x in v)]
        hint = (f" ({', '.join(elsewhere)} holds spans, but the labeling config's <Labels> is named "
                f"{schema.from_name!r})") if elsewhere else ""
        return problems.warn(task_id, None, f"no {schema.from_name!r} key{hint}: JSON-MIN cannot tell an empty "
                                            "annotation from an unlabelled task; task skipped", ann_id)
    if not isinstance(values, list):
        return problems.error(task_id, None, f"{schema.from_name!r} is {type_name(values)}, not a list", ann_id)
    reading = _Reading(problems.at(task_id, ann_id), schema, label_map)
    for number, value in enumerate(values):
        if isinstance(value, dict):
            reading.value(f"{schema.from_name!r} item #{number}", value)
        else:
            reading.at.error(f"{schema.from_name!r} item #{number} is {type_name(value)}, not an object")
    reading.report()
    source = str(chosen.get("source") or chosen.get("file") or "")
    return build_document(chosen.get(schema.text_key), reading.spans, task_id=task_id, source=source,
                          problems=problems, schema_labels=schema.labels, annotation=ann_id)


def read_labelstudio_min(path: str | Path, schema: LabelSchema, label_map=None) -> Corpus:
    """A Label Studio JSON-MIN export: one flat row per annotation, data keys at top level,
    spans under the `<Labels name>` key. Rows are grouped into tasks by id *and* text, so
    two tasks that share an id are both read."""
    path = Path(path)
    rows = export_items(path, load_json(path))
    if is_full_export(rows):
        raise AnnotationError([f"{path}: this looks like a full JSON export (tasks with 'data'/'annotations'); "
                               "use format labelstudio (or auto)"])
    problems = Problems(path)
    tasks: dict[tuple[str, str], tuple[Any, list]] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.error(f"#{index}", None, f"row is {type_name(row)}, not an object")
            continue
        task_id = _task_id(row, index, problems)
        if task_id is not None:
            key = (repr(task_id), repr(row.get(schema.text_key)))
            tasks.setdefault(key, (task_id, []))[1].append((index, row))
    documents = [_min_document(task_id, task_rows, schema, label_map, problems)
                 for task_id, task_rows in tasks.values()]
    warn_shared_ids([task_id for task_id, _ in tasks.values()], problems)
    return finish(documents, problems)
