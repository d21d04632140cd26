"""Every annotation of every task of a full Label Studio JSON export, each with its
annotator: what inter-annotator agreement compares. (Training reads one annotation per
task, chosen by the rule in labelstudio.py.)

Each annotation is read and validated by the training reader's own code: the task is
read as if that annotation were its only one (`labelstudio.task_document`), so every
span compared here is a span training would accept, and every problem is reported in
the reader's words. Then:

- cancelled annotations are left out (counted); so are annotations without a `result`
  (unlabelled, with a warning);
- the annotator is `completed_by`: a user id (an integer, as Label Studio exports it;
  named through `names` when given, else `user <id>`) or an object with an `email`;
  an annotation without one is left out with a warning.

Nothing else is decided here: two annotations of one annotator, ground truth, reviews
are all kept, for the caller to weigh (training.studio.agreement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..text.documents import Span
from ..text.schema import LabelSchema
from .labelstudio import annotation_rank, export_items, task_document, warn_shared_ids, is_full_export
from .validation import AnnotationError, Problems, load_json, short, type_name


@dataclass
class Annotation:
    """One annotator's validated spans of a task (NFC offsets, like every Document)."""

    annotator: str
    id: Any
    spans: list[Span]
    ground_truth: bool = False
    last_action: str | None = None  # Label Studio's: submitted, updated, imported, fixed_and_accepted...
    rank: tuple = ()  # the reader's order: the highest is the one training would choose


@dataclass
class AnnotatedTask:
    index: int  # position in the export
    id: Any
    text: str  # NFC
    source: str
    data: dict  # the task's data as exported (its text is not normalised)
    annotations: list[Annotation]  # every usable one, in export order


@dataclass
class AnnotatorCorpus:
    tasks: list[AnnotatedTask]
    warnings: list[str] = field(default_factory=list)
    cancelled: int = 0

    @property
    def annotators(self) -> list[str]:
        return sorted({a.annotator for task in self.tasks for a in task.annotations})


def annotator_name(completed_by: Any, names: Mapping[int, str] | None = None) -> str | None:
    """`completed_by` -> a name: an object's email (else its id), a user id via `names`
    (else `user <id>`), a string as it is; None when absent; ValueError for anything else."""
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip()
        completed_by = completed_by.get("id")
    if completed_by is None:
        return None
    if isinstance(completed_by, int) and not isinstance(completed_by, bool):
        return (names or {}).get(completed_by) or f"user {completed_by}"
    if isinstance(completed_by, str) and completed_by.strip():
        return completed_by.strip()
    raise ValueError(f"completed_by is {type_name(completed_by)} ({short(completed_by, repr)}), "
                     "not a user id or an object with an email")


def _task_annotations(index: int, task: Any, schema: LabelSchema, label_map, names, problems: Problems,
                      corpus: AnnotatorCorpus) -> None:
    annotations = task.get("annotations") if isinstance(task, dict) else None
    if not isinstance(annotations, list) or not annotations:
        task_document(index, task, schema, label_map, problems)  # the reader's error or warning
        return
    task_id = f"#{index}" if task.get("id") is None else task["id"]
    kept: list[Annotation] = []
    text = None  # the task's document, from any annotation read
    for number, annotation in enumerate(annotations):
        if isinstance(annotation, dict) and annotation.get("was_cancelled") is True:
            corpus.cancelled += 1
            continue
        ann_id = annotation.get("id") if isinstance(annotation, dict) else None
        ann_id = f"#{number}" if ann_id is None else ann_id
        if isinstance(annotation, dict) and annotation.get("result") is None:
            problems.warn(task_id, None, "no 'result' (missing or null): unlabelled; not compared", short(ann_id))
            continue
        document = task_document(index, {**task, "annotations": [annotation]}, schema, label_map, problems)
        if document is None:
            continue
        text = document
        try:
            name = annotator_name(annotation.get("completed_by"), names)
        except ValueError as exc:
            problems.error(task_id, None, str(exc), short(ann_id))
            continue
        if name is None:
            problems.warn(task_id, None, "no completed_by: the annotator is unknown; not compared", short(ann_id))
            continue
        action = annotation.get("last_action")
        kept.append(Annotation(name, ann_id, document.spans, annotation.get("ground_truth") is True,
                               action if isinstance(action, str) else None, annotation_rank(annotation, "id")))
    if text is not None and kept:
        corpus.tasks.append(AnnotatedTask(index, task_id, text.text, text.source,
                                          dict(task.get("data") or {}), kept))


def annotators_of_export(tasks: Any, schema: LabelSchema, label_map=None, where: str | Path = "export",
                         names: Mapping[int, str] | None = None) -> AnnotatorCorpus:
    """Every usable annotation of a full export already loaded (e.g. pulled through the
    API); `where` names it in messages. Raises AnnotationError listing every error."""
    where = Path(where)
    tasks = export_items(where, tasks)
    if not is_full_export(tasks):
        raise AnnotationError([(f"{where}: not a full Label Studio JSON export (no task has 'data' or "
                               "'annotations'); agreement needs the full JSON export, which names each annotator")])
    problems = Problems(where)
    corpus = AnnotatorCorpus([])
    for index, task in enumerate(tasks):
        _task_annotations(index, task, schema, label_map, names, problems, corpus)
    warn_shared_ids([t.get("id") for t in tasks if isinstance(t, dict) and t.get("id") is not None], problems)
    if problems.errors:
        raise AnnotationError(list(dict.fromkeys(problems.errors)))  # a task's own error, once
    corpus.warnings = list(dict.fromkeys(problems.warnings))
    return corpus


def read_annotators(path: str | Path, schema: LabelSchema, label_map=None,
                    names: Mapping[int, str] | None = None) -> AnnotatorCorpus:
    """Every usable annotation of a full Label Studio JSON export file, with its annotator."""
    return annotators_of_export(load_json(path), schema, label_map, path, names)
