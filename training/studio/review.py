"""`review`: disputed tasks go to a review project in Label Studio, and the reviewer's
accepted versions come back to the annotated project as ground truth.

Each run, idempotently:
1. every review task the reviewer annotated (one annotation per task by the reader's
   rule) is written back to its source task as a review: an annotation with
   `ground_truth` true and `last_action` `fixed_and_accepted`, by the API token's user;
   created, or updated when the review changed; unchanged otherwise;
2. the project's tasks annotated by two annotators or more whose agreement (strict span
   F1, micro over their pairs) is under `min_f1` and that have no review yet go to the
   review project (created with the project's labeling config), with
   each annotator's spans as one prediction (`model_version` = the annotator's email,
   else `user <id>`). Tasks already there are left as they are.

What trains is the project's own export (`pull`): there the review, a ground-truth
annotation, wins over the annotators' (rule in annotations/GUIDELINES.md); agreement
leaves reviews out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.annotators import AnnotatorCorpus, annotators_of_export
from ..data.validation import AnnotationError
from .agreement import REVIEW_ACTION, Agreement, agreement, is_review, review_task, spans_to_result
from .client import Studio
from .errors import StudioError
from .sync import schema_from_xml


@dataclass
class ReviewReport:
    project_id: int
    review_project_id: int
    created: bool
    agreement: Agreement
    disputed: int  # compared tasks under min_f1
    added: int
    already: int
    settled: int  # disputed, but reviewed already
    written: int = 0  # reviews written back as ground truth
    updated: int = 0
    unchanged: int = 0


def _read(studio: Studio, project, schema, names) -> tuple[list, AnnotatorCorpus]:
    tasks = studio.export_json(project.id)
    if tasks == []:  # nothing annotated yet
        return tasks, AnnotatorCorpus([])
    try:
        return tasks, annotators_of_export(tasks, schema, where=f"project {project.title!r}", names=names)
    except AnnotationError as exc:
        raise StudioError(f"the export of project {project.title!r} does not validate against its labeling "
                          f"config ({len(exc.problems)} problem(s); first: {exc.problems[0]})") from None


def _write_back(studio: Studio, project, review_project, corpus: AnnotatorCorpus, schema, names: dict,
                report: ReviewReport) -> None:
    _, reviews = _read(studio, review_project, schema, names)
    sources = {t.id: t for t in corpus.tasks}
    for review in reviews.tasks:
        source = sources.get(review.data.get("review_of_task"))
        if review.data.get("review_of_project") != project.id or source is None:
            continue
        accepted = max(review.annotations, key=lambda a: a.rank)
        keys = sorted((s.start, s.end, s.label) for s in accepted.spans)
        mine = sorted((a for a in source.annotations if is_review(a)), key=lambda a: a.rank)[-1:]
        if mine and sorted((s.start, s.end, s.label) for s in mine[0].spans) == keys:
            report.unchanged += 1
            continue
        result = spans_to_result(accepted.spans, source.data[schema.text_key], schema)
        if mine:
            studio._call(f"updating the ground truth of task {source.id}", studio.client.annotations.update,
                         mine[0].id, result=result, ground_truth=True, last_action=REVIEW_ACTION)
            report.updated += 1
        else:
            studio._call(f"writing the review of task {source.id} back", studio.client.annotations.create,
                         source.id, result=result, ground_truth=True, was_cancelled=False,
                         last_action=REVIEW_ACTION)
            report.written += 1
        accepted.last_action = REVIEW_ACTION
        source.annotations.append(accepted)  # the task is settled: not sent to review again


def review(studio: Studio, title: str, review_title: str, min_f1: float = 1.0) -> ReviewReport:
    project = studio.get_project(title)
    schema = schema_from_xml(project.label_config or "", f"project {title!r} (id {project.id})")
    users = studio._call("listing users", studio.client.users.list)
    names = {u.id: u.email for u in users if u.email}
    _, corpus = _read(studio, project, schema, names)
    result = agreement(corpus, schema.labels)
    existing = studio.find_project(review_title)
    report = ReviewReport(project.id, existing.id if existing else 0, False, result, 0, 0, 0, 0)
    if existing is not None:
        _write_back(studio, project, existing, corpus, schema, names, report)
    disputed = result.below(min_f1)
    report.disputed = len(disputed)
    settled = [t for t in disputed if any(map(is_review, t.task.annotations))]
    report.settled = len(settled)
    todo = [t for t in disputed if t not in settled]
    if not todo and existing is None:
        return report  # nothing to review: no empty project
    review_project, report.created, _ = studio.ensure_project(review_title, project.label_config or "")
    report.review_project_id = review_project.id
    there = {(t.data or {}).get("review_of_task") for t in studio.tasks(review_project.id)
             if (t.data or {}).get("review_of_project") == project.id}
    fresh = [t for t in todo if t.task.id not in there]
    report.already = len(todo) - len(fresh)
    if fresh:
        studio._call(f"importing {len(fresh)} review task(s)", studio.client.projects.import_tasks,
                     review_project.id, request=[review_task(t, schema, project.id) for t in fresh],
                     return_task_ids=True)
    report.added = len(fresh)
    return report
