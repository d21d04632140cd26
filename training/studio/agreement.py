"""Strict span agreement between annotators (pure: no network, no torch).

Semantics follow Prodigy's `metric.iaa.span`: only tasks that two or more annotators
annotated are compared; for each pair of annotators, over the tasks both annotated,
one annotator is taken as the reference and the other's spans are scored against it.
A span agrees only on an exact match of start, end and label. That F1 is symmetric:
F1 = 2 * both / (spans of A + spans of B). Per pair of annotators, per entity type
and overall, the counts are summed over pairs (micro average) before the F1 is taken.
Where neither annotator has a span there is nothing to disagree on: F1 is 1.0.

A disagreement is one span of one annotator without an exact match in the other's:
- boundary: it overlaps a span of the same label with other offsets;
- type: the other has the same offsets with another label;
- boundary+type: it overlaps a span that differs in both (neither rule above applies);
- missing: nothing of the other annotator overlaps it.
A boundary, type or boundary+type disagreement pairs one span of each annotator and
counts once.

Cancelled annotations are left out, and so are reviews: annotations whose `last_action`
is `fixed_and_accepted`, as `review` writes back a reviewer's accepted version; they are
adjudications, not one more annotator. Other ground-truth annotations are compared like
any other (Label Studio marks imported annotations as ground truth). When one annotator
has two annotations of a task, the training reader's rule picks one, with a warning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable

from ..common.tables import Table
from ..data.annotators import AnnotatedTask, Annotation, AnnotatorCorpus
from ..text.documents import Span, normalize_nfc
from ..text.schema import LabelSchema

KINDS = ("boundary", "type", "boundary+type", "missing")
REVIEW_ACTION = "fixed_and_accepted"  # the last_action of a review written back


def is_review(annotation: Annotation) -> bool:
    return annotation.last_action == REVIEW_ACTION


def one_per_annotator(task: AnnotatedTask, warnings: list[str]) -> list[Annotation]:
    """The annotations compared: reviews left out; of two by one annotator, the one the
    training reader would choose (ground truth, then most recently updated, then highest id)."""
    chosen: dict[str, Annotation] = {}
    for annotation in task.annotations:
        if is_review(annotation):
            continue
        other = chosen.get(annotation.annotator)
        if other is not None:
            kept, dropped = (annotation, other) if annotation.rank > other.rank else (other, annotation)
            warnings.append(f"task {task.id}: {annotation.annotator} has two annotations: {kept.id} compared, "
                            f"not {dropped.id} (the reader's rule, GUIDELINES.md)")
            annotation = kept
        chosen[annotation.annotator] = annotation
    return sorted(chosen.values(), key=lambda a: a.annotator)


@dataclass
class Counts:
    """Spans of A, spans of B, and spans in both (exact matches)."""

    a: int = 0
    b: int = 0
    both: int = 0
    tasks: int = 0

    def add(self, a: int, b: int, both: int) -> None:
        self.a, self.b, self.both = self.a + a, self.b + b, self.both + both

    @property
    def f1(self) -> float:
        return 2 * self.both / (self.a + self.b) if self.a + self.b else 1.0

    def as_dict(self) -> dict:
        return {"a_spans": self.a, "b_spans": self.b, "both": self.both, "f1": round(self.f1, 4)}


@dataclass(frozen=True)
class Disagreement:
    kind: str  # one of KINDS
    a: Span | None  # A's span (None: B only)
    b: Span | None  # B's span (None: A only)


@dataclass
class PairComparison:
    """Two annotators on one task."""

    a: str
    b: str
    a_spans: list[Span]
    b_spans: list[Span]
    both: list[Span]
    disagreements: list[Disagreement]


@dataclass
class TaskComparison:
    task: AnnotatedTask
    annotations: list[Annotation]  # those compared: one per annotator
    pairs: list[PairComparison]

    @property
    def counts(self) -> Counts:
        counts = Counts()
        for pair in self.pairs:
            counts.add(len(pair.a_spans), len(pair.b_spans), len(pair.both))
        return counts

    @property
    def disagreements(self) -> int:
        return sum(len(p.disagreements) for p in self.pairs)


def _key(span: Span) -> tuple[int, int, str]:
    return span.start, span.end, span.label


def compare_spans(a_spans: Iterable[Span], b_spans: Iterable[Span]) -> tuple[list[Span], list[Disagreement]]:
    """(exact matches, disagreements) of two annotators' flat spans over one text."""
    a_spans, b_spans = sorted(a_spans), sorted(b_spans)
    b_keys = {_key(s) for s in b_spans}
    both = [s for s in a_spans if _key(s) in b_keys]
    matched = {_key(s) for s in both}
    a_only = [s for s in a_spans if _key(s) not in matched]
    b_only = [s for s in b_spans if _key(s) not in matched]
    found: list[Disagreement] = []
    rules = (("type", lambda x, y: (x.start, x.end) == (y.start, y.end)),
             ("boundary", lambda x, y: x.label == y.label and x.overlaps(y)),
             ("boundary+type", lambda x, y: x.overlaps(y)))
    for kind, pairs in rules:
        for x in list(a_only):
            candidates = [y for y in b_only if pairs(x, y)]
            if candidates:  # the largest overlap first; spans are flat, so rarely more than one
                y = max(candidates, key=lambda y: (min(x.end, y.end) - max(x.start, y.start), -y.start))
                found.append(Disagreement(kind, x, y))
                a_only.remove(x)
                b_only.remove(y)
    found += [Disagreement("missing", x, None) for x in a_only]
    found += [Disagreement("missing", None, y) for y in b_only]
    found.sort(key=lambda d: min(s.start for s in (d.a, d.b) if s is not None))
    return both, found


@dataclass
class Agreement:
    annotators: list[str]
    tasks: list[TaskComparison]  # tasks with two annotators or more, in export order
    pairs: dict[tuple[str, str], Counts]
    labels: dict[str, Counts]
    overall: Counts
    kinds: Counter
    single: int = 0  # tasks annotated by one annotator only: not compared
    reviews: int = 0  # reviews written back: left out
    cancelled: int = 0
    warnings: list[str] = field(default_factory=list)

    def ranked(self) -> list[TaskComparison]:
        """Tasks with disagreements: the most first, then the lowest F1, then export order."""
        disputed = [t for t in self.tasks if t.disagreements]
        return sorted(disputed, key=lambda t: (-t.disagreements, t.counts.f1, t.task.index))

    def below(self, min_f1: float) -> list[TaskComparison]:
        """Tasks whose agreement (micro F1 over their pairs) is under `min_f1`, in export order."""
        return [t for t in self.tasks if t.counts.f1 < min_f1]

    def report(self, top: int = 5, name: str = "export") -> str:
        if not self.tasks:
            return self._summary(name)
        return "\n\n".join([self._summary(name), str(self.pair_table()), str(self.label_table()),
                            str(self.kind_table()), *self._top(top)])

    def _summary(self, name: str) -> str:
        lines = [(f"agreement in {name}: {len(self.tasks)} task(s) annotated by 2+ annotators, "
                 f"{len(self.annotators)} annotator(s) ({', '.join(self.annotators) or 'none'}), "
                 f"{len(self.pairs)} pair(s); strict match: same start, end and label")]
        if self.tasks:
            lines.append(f"overall F1 (micro over pairs): {self.overall.f1:.3f} ({self.overall.both} span(s) in "
                         f"both of {self.overall.a + self.overall.b} compared)")
        else:
            lines.append("nothing to compare: no task has annotations by two annotators or more")
        left = [f"{n} {what}" for n, what in ((self.single, "task(s) with one annotator"),
                                               (self.cancelled, "cancelled annotation(s)"),
                                               (self.reviews, "review(s) written back (adjudications)"))
                if n]
        if left:
            lines.append(f"not compared: {', '.join(left)}")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s) while reading, first: {self.warnings[0]}")
        return "\n".join(lines)

    def pair_table(self) -> Table:
        rows = [[f"{a} vs {b}", c.tasks, c.a, c.b, c.both, c.f1] for (a, b), c in self.pairs.items()]
        o = self.overall
        return Table(["pair (A vs B)", "tasks", "A spans", "B spans", "both", "F1"], rows,
                     "pairwise F1 (strict)", [["overall (micro)", o.tasks, o.a, o.b, o.both, o.f1]])

    def label_table(self) -> Table:
        rows = [[label, c.a + c.b, c.both, c.f1] for label, c in self.labels.items()]
        return Table(["type", "spans", "both", "F1"], rows, "per entity type (micro over pairs)")

    def kind_table(self) -> Table:
        rows = [[kind, self.kinds[kind]] for kind in KINDS]
        return Table(["kind", "count"], rows, "disagreements", [["total", sum(self.kinds.values())]])

    def _top(self, top: int) -> list[str]:
        ranked = self.ranked()
        if not ranked or top <= 0:
            return ["no disagreement"] if not ranked else []
        shown = [f"the {min(top, len(ranked))} task(s) with most disagreement (of {len(ranked)})"]
        for comparison in ranked[:top]:
            task = comparison.task
            where = f" ({task.source})" if task.source else ""
            lines = [(f"task {task.id}{where}: {comparison.disagreements} disagreement(s), F1 "
                     f"{comparison.counts.f1:.3f}"), f"  {task.text}"]
            for pair in comparison.pairs:
                if not pair.disagreements:
                    continue
                rows = [(s.start, ["both", _show(s), _show(s)]) for s in pair.both]
                rows += [(min(x.start for x in (d.a, d.b) if x), [d.kind, _show(d.a), _show(d.b)])
                         for d in pair.disagreements]
                rows.sort(key=lambda r: r[0])
                table = str(Table(["", f"A: {pair.a}", f"B: {pair.b}"], [r for _, r in rows]))
                lines += ["  " + line for line in table.splitlines()]
            shown.append("\n".join(lines))
        return shown

    def to_json(self) -> dict:
        def span(s: Span | None):
            return None if s is None else {"start": s.start, "end": s.end, "label": s.label, "text": s.text}

        return {
            "match": "strict: same start, end and label",
            "annotators": self.annotators,
            "tasks_compared": len(self.tasks),
            "not_compared": {"single_annotator_tasks": self.single, "cancelled": self.cancelled,
                             "reviews": self.reviews},
            "overall": self.overall.as_dict() if self.tasks else None,
            "pairs": [{"a": a, "b": b, "tasks": c.tasks, **c.as_dict()} for (a, b), c in self.pairs.items()],
            "labels": {label: c.as_dict() for label, c in self.labels.items()},
            "disagreements": {kind: self.kinds[kind] for kind in KINDS},
            "tasks": [{"task": t.task.id, "source": t.task.source, "text": t.task.text,
                       "disagreements": t.disagreements, "f1": round(t.counts.f1, 4),
                       "pairs": [{"a": p.a, "b": p.b, "both": [span(s) for s in p.both],
                                  "disagreements": [{"kind": d.kind, "a": span(d.a), "b": span(d.b)}
                                                    for d in p.disagreements]} for p in t.pairs]}
                      for t in self.ranked()],
        }


def _show(span: Span | None) -> str:
    return "-" if span is None else f"[{span.start}:{span.end}] {span.label} {span.text!r}"


def agreement(corpus: AnnotatorCorpus, labels: Iterable[str] = ()) -> Agreement:
    """Pairwise strict span agreement over every task that two or more annotators annotated.
    `labels` orders the per-type table (the labeling config's order); others follow sorted."""
    tasks, pairs, kinds = [], {}, Counter()
    per_label: dict[str, Counts] = {label: Counts() for label in labels}
    overall = Counts()
    single = reviews = 0
    warnings = list(corpus.warnings)
    for task in corpus.tasks:
        reviews += sum(map(is_review, task.annotations))
        annotations = one_per_annotator(task, warnings)
        if len(annotations) < 2:
            single += bool(annotations)
            continue
        comparisons = []
        for x, y in combinations(annotations, 2):
            both, found = compare_spans(x.spans, y.spans)
            comparisons.append(PairComparison(x.annotator, y.annotator, sorted(x.spans), sorted(y.spans), both, found))
            counts = pairs.setdefault((x.annotator, y.annotator), Counts())
            counts.tasks += 1
            for target in (counts, overall):
                target.add(len(x.spans), len(y.spans), len(both))
            a_labels, b_labels = Counter(s.label for s in x.spans), Counter(s.label for s in y.spans)
            both_labels = Counter(s.label for s in both)
            for label in sorted(set(a_labels) | set(b_labels)):
                per_label.setdefault(label, Counts()).add(a_labels[label], b_labels[label], both_labels[label])
            kinds.update(d.kind for d in found)
        overall.tasks += 1
        tasks.append(TaskComparison(task, annotations, comparisons))
    per_label = {label: c for label, c in per_label.items() if c.a + c.b}
    annotators = sorted({name for pair in pairs for name in pair})
    return Agreement(annotators, tasks, dict(sorted(pairs.items())), per_label, overall, kinds, single,
                     reviews, corpus.cancelled, warnings)


# -- review: each annotator's spans as a Label Studio prediction --------------------------------
def spans_to_result(spans: Iterable[Span], text: str, schema: LabelSchema) -> list[dict]:
    """Spans (NFC offsets, as read) -> Label Studio result items over `text` as stored in the
    task, which may be NFD: offsets are mapped back to it."""
    norm = normalize_nfc(text)
    out = []
    for span in spans:
        start, end = norm.original_index(span.start), norm.original_index(span.end)
        out.append({"from_name": schema.from_name, "to_name": schema.to_name, "type": "labels",
                    "value": {"start": start, "end": end, "text": text[start:end], "labels": [span.label]}})
    return out


def review_task(comparison: TaskComparison, schema: LabelSchema, project_id: int) -> dict:
    """A review-project task: the task's data as exported plus where it comes from and its
    agreement, and one prediction per annotator (`model_version` = the annotator)."""
    task = comparison.task
    text = task.data.get(schema.text_key)
    data = {**task.data, "review_of_project": project_id, "review_of_task": task.id,
            "agreement_f1": round(comparison.counts.f1, 4),
            "annotators": ", ".join(a.annotator for a in comparison.annotations)}
    predictions = [{"model_version": a.annotator, "result": spans_to_result(a.spans, text, schema)}
                   for a in comparison.annotations]
    return {"data": data, "predictions": predictions}
