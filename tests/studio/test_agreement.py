"""`python -m training.studio agreement`: strict span agreement between annotators, on an
export written for it (tests/fixtures/two_annotators.json: two annotators over six short
news sentences, with a boundary, a type, a boundary+type and two missing-span disagreements,
a cancelled annotation and a task only one annotator labelled). Offline: no server."""

from __future__ import annotations

import json
import unicodedata

import pytest
from conftest import ANNOTATIONS, FIXTURES

from training.data.annotators import annotator_name, annotators_of_export, read_annotators
from training.data.validation import AnnotationError
from training.studio.agreement import Counts, agreement, compare_spans, review_task
from training.text.documents import Span

EXPORT = FIXTURES / "two_annotators.json"
LAN, MINH = "lan@example.vn", "minh@example.vn"


@pytest.fixture(scope="module")
def result(schema):
    return agreement(read_annotators(EXPORT, schema), schema.labels)


def cli(*args: str) -> int:
    from training.studio.__main__ import main

    return main(list(args))


def labels_result(text, spans):
    return [{"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}} for s, e, label in spans]


def task(task_id, text, *annotations):
    """annotations: (completed_by, spans[, extra annotation fields])."""
    return {"id": task_id, "data": {"text": text}, "annotations": [
        {"id": task_id * 10 + n, "completed_by": who, "result": labels_result(text, spans), **(extra[0] if extra else {})}
        for n, (who, spans, *extra) in enumerate(annotations)]}


# -- the figures on the fixture -------------------------------------------------------------------
def test_pairwise_and_overall_f1(result):
    assert result.annotators == [LAN, MINH]
    assert [t.task.id for t in result.tasks] == [1, 2, 3, 4, 5]
    assert (result.single, result.cancelled, result.reviews) == (1, 1, 0)  # task 6; Hoa skipped task 3
    pair = result.pairs[LAN, MINH]
    assert (pair.tasks, pair.a, pair.b, pair.both) == (5, 15, 15, 11)
    assert pair.f1 == pytest.approx(22 / 30)
    assert result.overall.f1 == pytest.approx(22 / 30)


def test_per_entity_type(result):
    figures = {label: (c.a, c.b, c.both, round(c.f1, 4)) for label, c in result.labels.items()}
    assert figures == {
        "ORG": (2, 2, 1, 0.5),          # Thông tấn xã Việt Nam agreed; Lào (B), the company (A) not
        "PER": (2, 2, 2, 1.0),
        "LOC": (7, 7, 6, round(12 / 14, 4)),
        "EVENT": (1, 2, 0, 0.0),        # the boundary on task 2, Quốc khánh only B labelled
        "DATE": (3, 2, 2, 0.8),         # 20/7 only A labelled
    }
    assert list(result.labels) == ["ORG", "PER", "LOC", "EVENT", "DATE"]  # the labeling config's order


def test_disagreements_are_classified(result):
    assert dict(result.kinds) == {"boundary": 1, "type": 1, "boundary+type": 1, "missing": 2}
    ranked = result.ranked()
    assert [(t.task.id, t.disagreements, round(t.counts.f1, 4)) for t in ranked] == [
        (2, 2, 0.3333), (5, 1, 0.5), (4, 1, 0.8), (3, 1, round(6 / 7, 4))]
    found = {t.task.id: [(d.kind, d.a and (d.a.start, d.a.end, d.a.label, d.a.text),
                          d.b and (d.b.start, d.b.end, d.b.label, d.b.text)) for d in t.pairs[0].disagreements]
             for t in ranked}
    assert found == {
        2: [("boundary", (0, 43, "EVENT", "Hội nghị Bộ trưởng Kinh tế ASEAN lần thứ 56"),
             (0, 32, "EVENT", "Hội nghị Bộ trưởng Kinh tế ASEAN")),
            ("type", (78, 81, "LOC", "Lào"), (78, 81, "ORG", "Lào"))],
        5: [("boundary+type", (0, 33, "ORG", "Công ty Cổ phần Vận tải Sông Hồng"), (24, 33, "LOC", "Sông Hồng"))],
        4: [("missing", None, (56, 66, "EVENT", "Quốc khánh"))],
        3: [("missing", (74, 78, "DATE", "20/7"), None)],
    }
    assert [t.task.id for t in result.below(1.0)] == [2, 3, 4, 5]
    assert [t.task.id for t in result.below(0.6)] == [2, 5]


def test_cli_prints_the_tables_and_the_most_disputed_tasks(tmp_path, capsys):
    out = tmp_path / "agreement.json"
    assert cli("agreement", str(EXPORT), "--top", "2", "--json", str(out)) == 0
    text = capsys.readouterr().out
    lines = [line.rstrip() for line in text.splitlines()]
    for expected in [
        (f"agreement in {EXPORT}: 5 task(s) annotated by 2+ annotators, 2 annotator(s) ({LAN}, {MINH}), "
        "1 pair(s); strict match: same start, end and label"),
        "overall F1 (micro over pairs): 0.733 (11 span(s) in both of 30 compared)",
        "not compared: 1 task(s) with one annotator, 1 cancelled annotation(s)",
        "lan@example.vn vs minh@example.vn      5       15       15    11  0.733",
        "overall (micro)                        5       15       15    11  0.733",
        "ORG        4     1  0.500",
        "LOC       14     6  0.857",
        "EVENT      3     0  0.000",
        "boundary           1",
        "boundary+type      1",
        "missing            2",
        "total              5",
        "the 2 task(s) with most disagreement (of 4)",
        "task 2 (tin-02.txt): 2 disagreement(s), F1 0.333",
        "  Hội nghị Bộ trưởng Kinh tế ASEAN lần thứ 56 khai mạc sáng nay tại Viêng Chăn, Lào.",
        ("  boundary  [0:43] EVENT 'Hội nghị Bộ trưởng Kinh tế ASEAN lần thứ 56'  "
        "[0:32] EVENT 'Hội nghị Bộ trưởng Kinh tế ASEAN'"),
        "  both      [66:76] LOC 'Viêng Chăn'                                    [66:76] LOC 'Viêng Chăn'",
        "  type      [78:81] LOC 'Lào'                                           [78:81] ORG 'Lào'",
        "task 5 (tin-05.txt): 1 disagreement(s), F1 0.500",
        "  boundary+type  [0:33] ORG 'Công ty Cổ phần Vận tải Sông Hồng'  [24:33] LOC 'Sông Hồng'",
        f"wrote {out}",
    ]:
        assert expected in lines, expected
    assert "task 4" not in text  # --top 2
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["overall"] == {"a_spans": 15, "b_spans": 15, "both": 11, "f1": 0.7333}
    assert data["pairs"] == [{"a": LAN, "b": MINH, "tasks": 5, "a_spans": 15, "b_spans": 15, "both": 11, "f1": 0.7333}]
    assert data["disagreements"] == {"boundary": 1, "type": 1, "boundary+type": 1, "missing": 2}
    assert [t["task"] for t in data["tasks"]] == [2, 5, 4, 3]  # every disputed task, most disputed first
    assert data["tasks"][3]["pairs"][0]["disagreements"] == [
        {"kind": "missing", "a": {"start": 74, "end": 78, "label": "DATE", "text": "20/7"}, "b": None}]


# -- the rules ------------------------------------------------------------------------------------
def test_compare_spans_pairs_each_span_once():
    a = [Span(0, 5, "ORG"), Span(10, 20, "LOC"), Span(30, 35, "PER"), Span(40, 50, "EVENT")]
    b = [Span(0, 5, "ORG"), Span(12, 20, "LOC"), Span(30, 35, "LOC"), Span(45, 48, "DATE"), Span(60, 62, "PER")]
    both, found = compare_spans(a, b)
    assert both == [Span(0, 5, "ORG")]
    assert [(d.kind, d.a, d.b) for d in found] == [
        ("boundary", Span(10, 20, "LOC"), Span(12, 20, "LOC")),
        ("type", Span(30, 35, "PER"), Span(30, 35, "LOC")),
        ("boundary+type", Span(40, 50, "EVENT"), Span(45, 48, "DATE")),
        ("missing", None, Span(60, 62, "PER")),
    ]
    assert compare_spans([], []) == ([], [])
    assert Counts().f1 == 1.0  # neither has a span: nothing to disagree on


def test_three_annotators_micro_over_pairs(schema):
    text = "Đoàn Campuchia đến Hà Nội ngày 3/4."
    export = [task(1, text, (7, [(5, 14, "LOC"), (19, 25, "LOC")]), (8, [(5, 14, "LOC"), (19, 25, "LOC")]),
                   (9, [(5, 14, "LOC")])),
              task(2, "Hà Nội đón khách.", (7, [(0, 6, "LOC")]), (8, [(0, 6, "ORG")]))]
    corpus = annotators_of_export(export, schema, names={7: "an@example.vn", 8: "binh@example.vn"})
    result = agreement(corpus, schema.labels)
    assert result.annotators == ["an@example.vn", "binh@example.vn", "user 9"]  # ids without an email
    figures = {pair: (c.tasks, c.a, c.b, c.both) for pair, c in result.pairs.items()}
    assert figures == {("an@example.vn", "binh@example.vn"): (2, 3, 3, 2),
                       ("an@example.vn", "user 9"): (1, 2, 1, 1),
                       ("binh@example.vn", "user 9"): (1, 2, 1, 1)}
    assert (result.overall.a, result.overall.b, result.overall.both) == (7, 5, 4)
    assert result.overall.f1 == pytest.approx(8 / 12)
    assert result.overall.tasks == 2


def test_reviews_left_out_and_one_annotation_per_annotator(schema):
    text = "Lào và Việt Nam ký thỏa thuận."
    export = [task(1, text,
                   (1, [(0, 3, "LOC")], {"updated_at": "2026-11-02T10:00:00Z"}),
                   (1, [(0, 3, "LOC"), (7, 15, "LOC")], {"updated_at": "2026-11-03T10:00:00Z"}),  # newer: compared
                   (2, [(0, 3, "LOC"), (7, 15, "LOC")], {"ground_truth": True}),  # imported: still an annotator
                   (3, [(0, 3, "ORG")], {"ground_truth": True, "last_action": "fixed_and_accepted"}))]  # a review
    result = agreement(annotators_of_export(export, schema), schema.labels)
    assert result.reviews == 1 and result.annotators == ["user 1", "user 2"]
    assert result.overall.f1 == 1.0 and not result.ranked()
    assert any("user 1 has two annotations: 11 compared, not 10" in w for w in result.warnings)


def test_every_annotation_is_validated_like_training_reads_it(schema, tmp_path, capsys):
    text = "Hội nghị ở Hà Nội."
    export = [task(1, text, (1, [(11, 17, "LOC")]), (2, [(11, 17, "CITY")]))]
    export[0]["annotations"][0]["result"][0]["value"]["text"] = "Hà Nộ"
    with pytest.raises(AnnotationError) as error:
        annotators_of_export(export, schema, where="x.json")
    assert error.value.problems == [
        "x.json: task 1: annotation 10: span [11:17] 'Hà Nộ' (LOC): text[start:end] is 'Hà Nội', not the span text",
        ("x.json: task 1: annotation 11: span [11:17] 'Hà Nội' (CITY): label 'CITY' is not in the schema "
        "['ORG', 'PER', 'LOC', 'EVENT', 'DATE']")]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    assert cli("agreement", str(path)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 2 annotation problem(s); first: ") and "annotation 10" in err[0]


def test_annotators_and_what_is_not_compared(schema):
    assert annotator_name({"id": 4, "email": "hoa@example.vn"}) == "hoa@example.vn"
    assert annotator_name({"id": 4}) == "user 4" and annotator_name(4, {4: "hoa@example.vn"}) == "hoa@example.vn"
    assert annotator_name(None) is None
    with pytest.raises(ValueError):
        annotator_name([4])
    export = [task(1, "Huế.", (1, [(0, 3, "LOC")]), (None, [(0, 3, "LOC")])),
              {"id": 2, "data": {"text": "Huế."}, "annotations": [{"id": 5, "completed_by": 1, "result": None}]}]
    corpus = annotators_of_export(export, schema, where="e.json")
    assert [len(t.annotations) for t in corpus.tasks] == [1]
    assert "e.json: task 1: annotation 11: no completed_by: the annotator is unknown; not compared" in corpus.warnings
    assert "e.json: task 2: annotation 5: no 'result' (missing or null): unlabelled; not compared" in corpus.warnings
    with pytest.raises(AnnotationError, match="full JSON export"):
        annotators_of_export([{"id": 1, "text": "Huế.", "label": []}], schema)


def test_review_task_has_one_prediction_per_annotator_on_the_stored_text(schema):
    nfd = unicodedata.normalize("NFD", "Ông Lê Minh Quân thăm Huế.")
    nfc = unicodedata.normalize("NFC", nfd)
    per, loc = nfc.index("Lê Minh Quân"), nfc.index("Huế")
    spans = [(per, per + 12, "PER"), (loc, loc + 3, "LOC")]
    export = [task(3, nfc, (1, spans), (2, spans[:1]))]
    export[0]["data"]["text"] = nfd  # Label Studio stores the text as given: offsets are NFD there
    for annotation in export[0]["annotations"]:
        for item in annotation["result"]:
            start = len(unicodedata.normalize("NFD", nfc[:item["value"]["start"]]))
            item["value"].update(start=start, end=start + len(unicodedata.normalize("NFD", item["value"]["text"])),
                                 text=unicodedata.normalize("NFD", item["value"]["text"]))
    comparison = agreement(annotators_of_export(export, schema, names={1: LAN, 2: MINH})).tasks[0]
    made = review_task(comparison, schema, project_id=9)
    assert made["data"]["text"] == nfd
    assert {k: made["data"][k] for k in ("review_of_project", "review_of_task", "agreement_f1", "annotators")} == \
        {"review_of_project": 9, "review_of_task": 3, "agreement_f1": round(2 / 3, 4), "annotators": f"{LAN}, {MINH}"}
    assert [p["model_version"] for p in made["predictions"]] == [LAN, MINH]
    assert made["predictions"][0]["result"] == export[0]["annotations"][0]["result"]  # same offsets, same text
    for prediction in made["predictions"]:
        for item in prediction["result"]:
            assert nfd[item["value"]["start"]:item["value"]["end"]] == item["value"]["text"]


def test_gold_export_has_nothing_to_compare(capsys):
    assert cli("agreement", str(ANNOTATIONS / "gold_export.json")) == 0
    assert "nothing to compare: no task has annotations by two annotators or more" in capsys.readouterr().out
