"""Hostile and unusual exports: a generated table of malformed or odd files, each read
through `read_corpus` and (a representative subset) through `python -m training.stats`.

Every case ends one of three ways, never with a traceback:
- "error": AnnotationError naming the file and (where there is one) the task,
  annotation and span;
- "warn": read, with a warning naming the file and task of what was set aside;
- "intact": read, every span of the clean version kept (a variant that loses nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ANNOTATIONS, ROOT
from training.data.readers import AnnotationError, read_corpus
from training.text.schema import read_labeling_config

TEXT = "Thứ trưởng Đỗ Hùng Việt dẫn đầu đoàn Việt Nam tại Viêng Chăn (Lào)."
NAMES = [("Đỗ Hùng Việt", "PER"), ("Việt Nam", "LOC"), ("Viêng Chăn", "LOC"), ("Lào", "LOC")]
SCHEMA = read_labeling_config(ANNOTATIONS / "labeling_config.xml")


def result(start, end, label, text=None, **extra):
    value = {"start": start, "end": end, "text": TEXT[start:end] if text is None else text, "labels": [label]}
    return {"id": f"r{start}", "from_name": "label", "to_name": "text", "type": "labels", "value": value, **extra}


def results(text=TEXT):
    """The four names' results in `text` (NFC or NFD)."""
    form = "NFD" if unicodedata.is_normalized("NFD", text) else "NFC"
    names = [(unicodedata.normalize(form, name), label) for name, label in NAMES]
    return [result(text.index(n), text.index(n) + len(n), label, n) for n, label in names]


def task(task_id=7, text=TEXT, **annotation):
    """The clean task, with annotation fields overridden."""
    annotation = {"id": 1, "updated_at": "2026-01-01", **annotation}
    if "result" not in annotation:
        annotation["result"] = results(text)
    return {"id": task_id, "data": {"text": text, "source": "a.txt"}, "annotations": [annotation]}


def export(*tasks) -> bytes:
    return json.dumps(list(tasks) or [task()], ensure_ascii=False).encode("utf-8")


def with_result(*extra, keep=True, **annotation) -> bytes:
    """The clean task with results appended (keep=True) or as the only results."""
    return export(task(result=(results() if keep else []) + list(extra), **annotation))


def with_value(**value) -> bytes:
    """The clean task whose first result's `value` gets these keys (None: key removed)."""
    first = result(11, 23, "PER")
    first["value"].update(value)
    first["value"] = {k: v for k, v in first["value"].items() if v is not None}
    return export(task(result=[first] + results()[1:]))


def json_min(*rows) -> bytes:
    clean = {"id": 7, "text": TEXT, "annotation_id": 1, "updated_at": "2026-01-01",
             "label": [r["value"] for r in results()]}
    return json.dumps([{**clean, **row} for row in rows] or [clean], ensure_ascii=False).encode("utf-8")


CONLL = "Đoàn O\nViệt_Nam B-LOC\nđến O\nViêng_Chăn B-LOC\n. O\n\nÔng O\nĐỗ_Hùng_Việt B-PER\nphát_biểu O\n"
JSONL = "\n".join(json.dumps({"words": block[0], "tags": block[1]}, ensure_ascii=False) for block in [
    (["Đoàn", "Việt_Nam", "đến", "Viêng_Chăn", "."], ["O", "B-LOC", "O", "B-LOC", "O"]),
    (["Ông", "Đỗ_Hùng_Việt", "phát_biểu"], ["O", "B-PER", "O"])]) + "\n"


@dataclass
class Case:
    name: str
    content: bytes
    expect: str  # "error" | "warn" | "intact"
    needles: tuple[str, ...] = ()
    suffix: str = ".json"
    fmt: str = "auto"
    spans: str | int | None = None  # "clean": same spans as the clean file; int: how many
    cli: bool = False  # also run through `python -m training.stats`


CASES: list[Case] = []


def case(name, content, expect, *needles, **options):
    CASES.append(Case(name, content, expect, tuple(needles), **options))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- files that are not a readable export -----------------------------------------------
case("empty-file", b"", "error", "empty", cli=True)
case("whitespace-only-file", b" \n\t\n", "error", "empty")
case("truncated-json", export()[:-25], "error", "cannot read JSON", cli=True)
case("non-utf8-bytes", export().replace("Lào".encode(), b"L\xe0o"), "error", "cannot read", "utf-8")
case("top-level-object", b'{"tasks": []}', "error", "list of tasks", "an object")
case("top-level-string", b'"tasks"', "error", "list of tasks", "a string")
case("top-level-number", b"42", "error", "list of tasks", "a number")
case("top-level-null", b"null", "error", "list of tasks", "null")
case("zero-tasks", b"[]", "error", "no tasks", cli=True)
case("list-of-strings", b'["a", "b"]', "error", "task #0", "not a task object", "task #1")
case("deep-nesting-top", nested(100_000).encode(), "error", "nested too deeply", cli=True)
case("duplicate-key", export().replace(b'"start": 11', b'"start": 11, "start": 12', 1), "error", "'start' appears twice")
case("lone-surrogate", export().replace("Lào".encode(), b"L\\ud800o"), "error", "surrogate")
case("huge-int-digits", export().replace(b'"start": 11', b'"start": 1' + b"0" * 5000, 1), "error", "cannot read JSON")
case("bom-and-garbage", b"\xef\xbb\xbf{oops", "error", "cannot read JSON")

# --- tasks of the wrong shape ------------------------------------------------------------
no_data = {k: v for k, v in task(3).items() if k != "data"}
case("task-without-data-first", export(no_data, task(8)), "error", "task 3", "'data' is missing", cli=True)
case("data-is-list", export({**task(), "data": [TEXT]}), "error", "task 7", "'data' is a list")
case("text-key-missing", export({**task(), "data": {"body": TEXT}}), "error", "task 7", "no 'text' key", "'body'")
case("text-is-number", export({**task(), "data": {"text": 5}}), "error", "task 7", "text is a number")
case("text-empty-string", export(task(text="", result=[])), "error", "task 7", "empty")
case("task-id-list", export({**task(), "id": [7]}), "error", "task #0", "task id [7]")
case("task-id-bool", export({**task(), "id": True}), "error", "task #0", "not an integer or a string")
case("annotations-dict", export({**task(), "annotations": {"id": 1, "result": []}}), "error", "task 7",
     "'annotations' is an object")
case("annotations-string", export({**task(), "annotations": "done"}), "error", "task 7", "'annotations' is a string")
case("annotation-item-string", export({**task(), "annotations": ["x"]}), "error", "task 7", "annotation #0 is a string")
case("annotations-empty-list", export({**task(), "annotations": []}), "warn", "task 7", "no usable annotation", spans=0)
case("annotations-missing", export({k: v for k, v in task().items() if k != "annotations"}), "warn", "task 7",
     "no usable annotation", spans=0)
case("cancelled-only", export(task(was_cancelled=True)), "warn", "task 7", "1 (cancelled)", "skipped", spans=0)
case("predictions-only", export({**task(), "annotations": [], "predictions": [{"result": results()}]}), "warn",
     "task 7", "1 prediction(s) not read", spans=0)
case("result-missing", export({**task(), "annotations": [{"id": 1}]}), "warn", "task 7", "annotation 1",
     "no 'result'", spans=0, cli=True)
case("result-null", export(task(result=None)), "warn", "task 7", "annotation 1", "no 'result'", spans=0)
case("result-dict", export(task(result={"value": {}})), "error", "task 7", "annotation 1", "'result' is an object")
case("result-string", export(task(result="PER")), "error", "task 7", "annotation 1", "'result' is a string")
case("result-item-string", with_result("PER"), "error", "task 7", "annotation 1", "result #4 is a string")
case("result-item-nested-garbage", with_result([[{"a": None}]]), "error", "task 7", "result #4 is a list")
case("task-id-with-line-break", export({**task(), "id": "7\n8", "data": {"text": 5}}), "error", "task '7\\n8'",
     "text is a number")
case("annotation-id-null", export({**task(), "annotations": [{"id": None, "result": None}]}), "warn", "task 7",
     "annotation #0", "no 'result'", spans=0)
case("ground-truth-string", export(task(ground_truth="yes")), "error", "task 7", "annotation 1", "ground_truth")
case("was-cancelled-number", export(task(was_cancelled=1)), "error", "task 7", "annotation 1", "was_cancelled")
two = task()
two["annotations"] = [{"id": 1, "result": None}, {"id": 2, "result": results(), "updated_at": "2025-01-01"}]
case("null-result-beside-a-good-annotation", export(two), "intact", "task 7", "annotation 1", "no 'result'",
     spans="clean")
mixed = task()
mixed["annotations"] = [{"id": 1, "result": [], "updated_at": "2026"}, {"id": "b", "result": results(), "updated_at": "2026"}]
case("annotation-ids-int-and-string", export(mixed), "warn", "task 7", "2 annotations", "using annotation 1", spans=0,
     cli=True)
truth = task()
truth["annotations"] = [{"id": 1, "result": results(), "ground_truth": True, "updated_at": "2025"},
                        {"id": 2, "result": [], "updated_at": "2026"}]
case("ground-truth-beats-newer", export(truth), "intact", "task 7", "using annotation 1", "not used: 2", spans="clean")
case("duplicate-task-ids", export(task(7), task(7, text=TEXT + " Hết.")), "intact", "task 7", "2 tasks share this id",
     spans=8, cli=True)

# --- results of the wrong shape, or not spans --------------------------------------------
case("value-list", export(task(result=[{**result(11, 23, "PER"), "value": [11, 23]}])), "error", "task 7",
     "annotation 1", "result #0", "value is a list", cli=True)
case("value-string", export(task(result=[{**result(11, 23, "PER"), "value": "PER"}])), "error", "value is a string")
case("value-missing", with_result({"from_name": "label", "type": "labels"}), "warn", "task 7", "annotation 1",
     "result #4 has no value", spans="clean", cli=True)
case("value-null", with_result({"type": "labels", "value": None}), "warn", "result #4 has no value", spans="clean")
case("labels-missing", with_value(labels=None), "warn", "task 7", "annotation 1", "[11:23]", "names no label", spans=3)
case("labels-null", export(task(result=[{**result(11, 23, "PER"), "value": {"start": 11, "end": 23, "labels": None}}])),
     "warn", "[11:23]", "'labels' null", spans=0)
case("labels-empty", with_value(labels=[]), "warn", "[11:23]", "'labels' []", spans=3)
case("labels-bare-string", with_value(labels="PER"), "intact", "task 7", "[11:23]", "read as one label", spans="clean",
     cli=True)
case("labels-numbers", with_value(labels=[5]), "error", "task 7", "[11:23]", "list of strings")
case("labels-object", with_value(labels={"PER": True}), "error", "[11:23]", "list of strings")
case("labels-capitalised-type", export(task(result=[{**r, "type": "Labels"} for r in results()])), "intact",
     spans="clean")
case("type-missing", export(task(result=[{k: v for k, v in r.items() if k != "type"} for r in results()])), "intact",
     spans="clean")
case("type-number", with_result({**result(11, 23, "PER"), "type": 5}, keep=False), "error", "result #0",
     "type 5 is not a string")
other_types = [{"type": "choices", "from_name": "topic", "value": {"choices": ["x"]}},
               {"type": "textarea", "from_name": "note", "value": {"text": ["hi"]}},
               {"type": "relation", "from_id": "r11", "to_id": "r37", "direction": "right"}]
case("non-span-results-counted", with_result(*other_types), "intact", "task 7",
     "3 non-span result(s) (choices, textarea, relation) ignored", spans="clean", cli=True)
case("from-name-missing", export(task(result=[{k: v for k, v in r.items() if k != "from_name"} for r in results()])),
     "intact", spans="clean")
case("other-labels-control", with_result({**result(0, 3, "ORG"), "from_name": "ner"}), "intact", "task 7",
     "control 'ner' ignored", spans="clean")

# --- offsets, labels and spans ----------------------------------------------------------
case("offsets-as-strings", with_value(start="11", end="23"), "error", "task 7", "annotation 1", "[11:23]",
     "start is a string", cli=True)
case("offsets-as-floats", with_value(start=11.0, end=23.0), "error", "[11.0:23.0]", "not an integer")
case("offset-bool", with_value(start=True), "error", "start is a boolean")
case("offset-nan", with_value(start=float("nan")), "error", "task 7", "start is a number (nan)")
case("offset-infinity", with_value(end=float("inf")), "error", "end is a number (inf)")
case("offset-nested-garbage", with_value(start={"a": [1, {"b": None}]}), "error", "start is an object")
case("offset-deeply-nested", with_value(start=json.loads(nested(300))), "error", "start is a list")
case("offset-missing", with_value(start=None), "error", "[None:23]", "start is null")
case("negative-offset", with_value(start=-1), "error", "[-1:23]", "start is negative")
case("end-before-start", with_value(start=23, end=11), "error", "[23:11]", "end is not after start")
case("empty-span", with_value(start=11, end=11), "error", "[11:11]", "end is not after start")
case("end-past-text", with_value(end=500), "error", "[11:500]", "past the end of the text")
case("huge-int-offset", with_value(end=10**30), "error", "past the end of the text")
case("span-text-mismatch", with_value(text="Đỗ Hùng"), "error", "task 7", "[11:23]", "not the span text", cli=True)
case("span-text-number", with_value(text=5), "error", "[11:23]", "not the span text")
case("span-text-missing", with_value(text=None), "intact", spans="clean")
case("unknown-label", with_value(labels=["PERSON"]), "error", "task 7", "[11:23]", "'PERSON' is not in the schema")
case("label-empty-string", with_value(labels=[""]), "error", "'' is not in the schema")
case("label-lowercase", with_value(labels=["per"]), "error", "'per' is not in the schema")
case("two-labels-on-one-span", with_value(labels=["PER", "ORG"]), "error", "several labels")
case("overlapping-spans", with_result(result(15, 27, "PER")), "error", "task 7", "overlaps")
case("nested-spans", with_result(result(11, 13, "PER")), "error", "[11:13]", "overlaps")
case("duplicate-span", with_result(result(11, 23, "PER")), "intact", "task 7", "duplicate span", spans="clean")
case("whitespace-at-edge", with_value(start=10, end=24, text=TEXT[10:24]), "intact", "whitespace at the edge",
     spans="clean")
case("whitespace-only-span", with_result(result(10, 11, "PER"), keep=False), "error", "only whitespace")

# --- variants that must lose nothing ------------------------------------------------------
case("nfd-text", export(task(text=unicodedata.normalize("NFD", TEXT))), "intact", spans="clean")
case("crlf-file", json.dumps([task()], ensure_ascii=False, indent=2).replace("\n", "\r\n").encode(), "intact",
     spans="clean")
CRLF_TEXT = "Thứ trưởng\r\nĐỗ Hùng Việt dẫn đầu đoàn Việt Nam tại Viêng Chăn (Lào)."
case("crlf-in-text", export(task(text=CRLF_TEXT)), "intact", spans="clean")
ODD_TEXT = "\u200b😀 " + TEXT.replace("dẫn", "dẫn\u00a0")
case("unicode-oddities", export(task(text=ODD_TEXT)), "intact", spans="clean")
case("bom-json", b"\xef\xbb\xbf" + export(), "intact", spans="clean", cli=True)
case("json-min", json_min(), "intact", spans="clean")
case("bom-json-min", b"\xef\xbb\xbf" + json_min(), "intact", spans="clean")
case("json-min-two-annotations-mixed-ids", json_min({"annotation_id": "x", "label": [], "updated_at": "2025"}, {}),
     "intact", "task 7", "using annotation 1", spans="clean")
case("json-min-shared-id-two-texts", json_min({}, {"text": TEXT + " Hết."}), "intact", "2 tasks share this id",
     spans=8)
case("json-min-as-labelstudio", json_min(), "error", "looks like a JSON-MIN export",
     "use format labelstudio-min (or auto)", fmt="labelstudio", cli=True)
case("full-as-labelstudio-min", export(), "error", "looks like a full JSON export", fmt="labelstudio-min")
case("json-min-label-object", json_min({"label": {"start": 11}}), "error", "task 7", "'label' is an object")
case("json-min-label-missing", json_min({"label": None}), "warn", "task 7", "annotation 1", "no 'label' key", spans=0)
case("json-min-renamed-key", json_min({"label": None, "ner": [r["value"] for r in results()]}), "warn",
     "'ner' holds spans", spans=0)
case("json-min-item-string", json_min({"label": ["PER"]}), "error", "task 7", "'label' item #0 is a string")
case("json-min-labels-string", json_min({"label": [{"start": 11, "end": 23, "labels": "PER"}]}), "intact",
     "read as one label", spans=1)
case("json-min-row-number", json.dumps([{"id": 1, "text": TEXT}, 5]).encode(), "error", "task #1", "row is a number")
case("json-min-offsets-strings", json_min({"label": [{"start": "11", "end": "23", "labels": ["PER"]}]}), "error",
     "task 7", "[11:23]", "start is a string")

# --- pre-segmented formats ----------------------------------------------------------------
case("conll-bom", b"\xef\xbb\xbf" + CONLL.encode(), "intact", suffix=".conll", spans="clean", cli=True)
case("conll-crlf", CONLL.replace("\n", "\r\n").encode(), "intact", suffix=".conll", spans="clean")
case("conll-tabs", CONLL.replace(" ", "\t").encode(), "intact", suffix=".conll", spans="clean")
case("conll-tab-word-with-space", CONLL.replace(" ", "\t").replace("Việt_Nam", "Việt Nam").encode(), "intact",
     suffix=".conll", spans="clean")
case("conll-missing-tag", CONLL.replace("đến O", "đến").encode(), "error", "line 3", "1 column(s)",
     suffix=".conll")
case("conll-bad-tag", CONLL.replace("B-PER", "PER").encode(), "error", "line 8", "'PER'", suffix=".conll")
case("conll-empty", b"", "error", "no sentence", suffix=".conll")
case("conll-docstart-only", b"-DOCSTART- O\n\n", "error", "no sentence", suffix=".conll")
case("conll-non-utf8", CONLL.encode("utf-16"), "error", "cannot read", suffix=".conll")
case("conll-cr-only", CONLL.replace("\n", "\r").encode(), "intact", suffix=".conll", spans="clean")
case("jsonl-line-separator-in-word", JSONL.replace("phát_biểu", "phát\u2028biểu").encode(), "intact",
     suffix=".jsonl", spans="clean")
case("jsonl-bom", b"\xef\xbb\xbf" + JSONL.encode(), "intact", suffix=".jsonl", spans="clean")
case("jsonl-words-numbers", JSONL.replace('"Đoàn"', "1").encode(), "error", "line 1", "'words' must be a list of strings", suffix=".jsonl")
case("jsonl-truncated-line", JSONL.encode()[:-10], "error", "line 2", "invalid JSON", suffix=".jsonl", cli=True)
case("jsonl-tag-count-mismatch", JSONL.replace('"O", "B-PER", "O"', '"O", "B-PER"').encode(), "error", "line 2",
     "3 words but 2 tags", suffix=".jsonl")
case("jsonl-empty", b"\n\n", "error", "no record", suffix=".jsonl")
case("jsonl-deep-nesting", (nested(100_000) + "\n").encode(), "error", "line 1", "nested too deeply", suffix=".jsonl")
case("jsonl-not-object", b'["words", "tags"]\n', "error", "line 1", "a list", suffix=".jsonl")

CLEAN = {".json": export(), ".conll": CONLL.encode(), ".jsonl": JSONL.encode()}


def write(tmp_path: Path, content: bytes, suffix: str, name: str = "export") -> Path:
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(content)
    return path


def spans_of(corpus):
    return [(s.text.replace("\u00a0", " "), s.label) for doc in corpus.documents for s in doc.spans]


def check_spans(c: Case, corpus, tmp_path: Path) -> None:
    if c.spans == "clean":
        clean = read_corpus(write(tmp_path, CLEAN[c.suffix], c.suffix, "clean"), schema=SCHEMA)
        assert spans_of(corpus) == spans_of(clean)
    elif c.spans is not None:
        assert len(spans_of(corpus)) == c.spans


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name) for c in CASES])
def test_reader(c: Case, tmp_path):
    path = write(tmp_path, c.content, c.suffix)
    if c.expect == "error":
        with pytest.raises(AnnotationError) as info:
            read_corpus(path, c.fmt, schema=SCHEMA)
        for line in info.value.problems:
            assert line.startswith(str(path)) and "\n" not in line, line  # one line naming the file
        message = str(info.value)
        assert all(n in message for n in c.needles), (c.needles, message)
        return
    corpus = read_corpus(path, c.fmt, schema=SCHEMA)
    if c.needles:
        assert any(w.startswith(str(path)) and all(n in w for n in c.needles) for w in corpus.warnings), corpus.warnings
    elif c.expect == "intact":
        assert corpus.warnings == []
    check_spans(c, corpus, tmp_path)


@pytest.mark.parametrize("c", [pytest.param(c, id=c.name) for c in CASES if c.cli])
def test_stats_cli(c: Case, tmp_path):
    path = write(tmp_path, c.content, c.suffix)
    command = [sys.executable, "-m", "training.stats", str(path), "--labeling-config",
               str(ANNOTATIONS / "labeling_config.xml")] + (["--format", c.fmt] if c.fmt != "auto" else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    if c.expect == "error":
        assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
        assert done.stderr.startswith("error: ") and str(path) in done.stderr
        assert all(n in done.stderr for n in c.needles), done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert "TOTAL" in done.stdout
        warnings = [line for line in done.stdout.splitlines() if line.startswith("warning: ")]
        assert all(any(n in w for w in warnings) for n in c.needles), done.stdout


def test_the_table_is_large_and_covers_every_outcome():
    assert len(CASES) >= 50 and len({c.name for c in CASES}) == len(CASES)
    assert {c.expect for c in CASES} == {"error", "warn", "intact"}
    assert 12 <= sum(c.cli for c in CASES) <= 20  # the CLI subset: a subprocess each
