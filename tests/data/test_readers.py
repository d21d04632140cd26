"""The data layer: readers, validation, BIO sentences (the exported annotations and public formats)."""

import json
import unicodedata

import pytest
from conftest import FIXTURES, GOLD, make_task, write_export

from training.data.readers import AnnotationError, read_corpus
from training.data.sentences import document_sentences
from training.text.bio import is_valid_iob2, tags_to_spans
from training.text.documents import Span
from training.text.schema import DEFAULT_LABELS, LabelSchema
from training.text.segmentation import RegexSegmenter

TEXT = "Thứ trưởng Đỗ Hùng Việt dẫn đầu đoàn Việt Nam tại Viêng Chăn (Lào)."


def test_gold_corpus_is_complete_and_exact(gold):
    assert len(gold.documents) == 5
    assert gold.warnings == []
    sources = {doc.source for doc in gold.documents}
    assert len(sources) == 5 and all(s.endswith(".txt") for s in sources)
    for doc in gold.documents:
        assert doc.spans, doc.source
        for a, b in zip(doc.spans, doc.spans[1:]):
            assert a.end <= b.start
        for span in doc.spans:
            assert doc.text[span.start:span.end] == span.text == span.text.strip()
    assert {s.label for d in gold.documents for s in d.spans} == set(DEFAULT_LABELS)


def test_tasks_file_holds_the_seed_articles_unchanged():
    seeds = GOLD.parent.parent.parent / "shared" / "seeds"
    tasks = json.loads((GOLD.parent / "tasks.json").read_text(encoding="utf-8"))
    assert len(tasks) == 5
    for task in tasks:
        seed = seeds / task["data"]["source"]
        if seed.exists():
            assert seed.read_text(encoding="utf-8") == task["data"]["text"]


def test_gold_round_trip_spans_to_bio_to_spans(gold, segmenter):
    for doc in gold.documents:
        sentences = document_sentences(doc, segmenter)
        assert all(is_valid_iob2(s.tags) for s in sentences)
        assert {s for sentence in sentences for s in tags_to_spans(sentence.words, sentence.tags, sentence.text)} == set(doc.spans), doc.source


def test_nfd_export_gives_the_same_documents(tmp_path, gold, schema):
    tasks = json.loads(GOLD.read_text(encoding="utf-8"))
    for task in tasks:
        text = task["data"]["text"]
        nfd = unicodedata.normalize("NFD", text)
        assert nfd != text
        task["data"]["text"] = nfd
        for result in task["annotations"][0]["result"]:
            value = result["value"]
            start = len(unicodedata.normalize("NFD", text[: value["start"]]))
            end = start + len(unicodedata.normalize("NFD", value["text"]))
            value.update(start=start, end=end, text=nfd[start:end])
    nfd_corpus = read_corpus(write_export(tmp_path / "nfd.json", tasks), schema=schema)
    for a, b in zip(nfd_corpus.documents, gold.documents):
        assert a.text == b.text
        assert a.spans == b.spans


def read_one(tmp_path, task, schema):
    return read_corpus(write_export(tmp_path / "export.json", [task]), schema=schema)


def assert_error(tmp_path, schema, task, *needles):
    with pytest.raises(AnnotationError) as info:
        read_one(tmp_path, task, schema)
    message = str(info.value)
    for needle in ("export.json", "task 7", *needles):
        assert needle in message, (needle, message)


def test_offsets_out_of_range(tmp_path, schema):
    assert_error(tmp_path, schema, make_task(TEXT, [(60, 200, "LOC", "Lào")]), "[60:200]", "out of range")


def test_text_mismatch(tmp_path, schema):
    assert_error(tmp_path, schema, make_task(TEXT, [(11, 23, "PER", "Đỗ Hùng")]), "[11:23]", "'Đỗ Hùng'", "not the span text")


def test_label_outside_schema(tmp_path, schema):
    assert_error(tmp_path, schema, make_task(TEXT, [(11, 23, "PERSON")]), "[11:23]", "'Đỗ Hùng Việt'", "PERSON", "not in the schema")


def test_overlapping_spans(tmp_path, schema):
    assert_error(tmp_path, schema, make_task(TEXT, [(11, 23, "PER"), (19, 27, "PER")]), "[19:27]", "[11:23]", "overlaps")


def test_nested_spans(tmp_path, schema):
    start = TEXT.index("Viêng")
    task = make_task(TEXT, [(start, start + 17, "LOC"), (start + 12, start + 15, "LOC")])
    assert_error(tmp_path, schema, task, f"[{start + 12}:{start + 15}]", "'Lào'", "overlaps")


def test_empty_text(tmp_path, schema):
    assert_error(tmp_path, schema, make_task("   ", []), "empty")


def test_several_labels_on_one_span(tmp_path, schema):
    task = make_task(TEXT, [(11, 23, "PER")])
    task["annotations"][0]["result"][0]["value"]["labels"] = ["PER", "ORG"]
    assert_error(tmp_path, schema, task, "[11:23]", "several labels")


def test_all_problems_are_reported_at_once(tmp_path, schema):
    task = make_task(TEXT, [(60, 200, "LOC", "x"), (11, 23, "PERSON")])
    with pytest.raises(AnnotationError) as info:
        read_one(tmp_path, task, schema)
    assert len(info.value.problems) == 2


def test_whitespace_at_span_edge_is_trimmed_with_a_warning(tmp_path, schema):
    corpus = read_one(tmp_path, make_task(TEXT, [(10, 24, "PER")]), schema)
    assert corpus.documents[0].spans == [Span(11, 23, "PER", "Đỗ Hùng Việt")]
    assert len(corpus.warnings) == 1 and "task 7" in corpus.warnings[0] and "[10:24]" in corpus.warnings[0]


def test_exact_duplicate_span_is_dropped_with_a_warning(tmp_path, schema):
    corpus = read_one(tmp_path, make_task(TEXT, [(11, 23, "PER"), (11, 23, "PER")]), schema)
    assert len(corpus.documents[0].spans) == 1 and "duplicate" in corpus.warnings[0]


def test_results_of_other_controls_and_types_are_ignored(tmp_path, schema):
    task = make_task(TEXT, [(11, 23, "PER")])
    task["annotations"][0]["result"] += [
        {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}},
        {"from_name": "other", "to_name": "text", "type": "labels", "value": {"start": 0, "end": 3, "text": "Thứ", "labels": ["ORG"]}},
    ]
    corpus = read_one(tmp_path, task, schema)
    assert corpus.documents[0].spans == [Span(11, 23, "PER", "Đỗ Hùng Việt")]
    assert len(corpus.warnings) == 1 and "control 'other' ignored" in corpus.warnings[0] and "task 7" in corpus.warnings[0]


def test_annotation_choice_rule(tmp_path, schema):
    task = make_task(TEXT, [(11, 23, "PER")])
    base = task["annotations"][0]
    old = {**base, "id": 2, "result": [], "updated_at": "2026-01-01T00:00:00Z"}
    new = {**base, "id": 3, "updated_at": "2026-02-01T00:00:00Z"}
    cancelled = {**base, "id": 4, "result": [], "was_cancelled": True, "updated_at": "2026-03-01T00:00:00Z"}
    task["annotations"] = [old, new, cancelled]
    assert len(read_one(tmp_path, task, schema).documents[0].spans) == 1  # newest non-cancelled
    task["annotations"] = [{**old, "ground_truth": True}, new]
    assert read_one(tmp_path, task, schema).documents[0].spans == []  # ground truth wins
    task["annotations"] = [cancelled]
    corpus = read_one(tmp_path, task, schema)
    assert corpus.documents == [] and "skipped" in corpus.warnings[0]


def test_json_min_export(tmp_path, schema):
    rows = [
        {"id": 3, "text": TEXT, "annotation_id": 1, "updated_at": "2026-01-01",
         "label": [{"start": 11, "end": 23, "text": "Đỗ Hùng Việt", "labels": ["PER"]}]},
        {"id": 3, "text": TEXT, "annotation_id": 2, "updated_at": "2026-02-01",
         "label": [{"start": 11, "end": 23, "text": "Đỗ Hùng Việt", "labels": ["PER"]},
                   {"start": 37, "end": 45, "text": "Việt Nam", "labels": ["LOC"]}]},
    ]
    path = write_export(tmp_path / "min.json", rows)
    corpus = read_corpus(path, schema=schema)
    assert [s.label for s in corpus.documents[0].spans] == ["PER", "LOC"]


COVID_MAP = {"PERSON_NAME": "PER", "LOCATION": "LOC", "ORGANIZATION": "ORG", "DATE": "DATE"}


@pytest.mark.parametrize("name", ["covid_style.conll", "covid_style.jsonl"])
def test_public_formats_load_with_a_label_map(name):
    corpus = read_corpus(FIXTURES / name, label_map=COVID_MAP)
    labels = {s.label for d in corpus.documents for s in d.spans}
    assert labels == {"PER", "LOC", "ORG", "DATE"}  # SYMPTOM, TRANSPORTATION, AGE -> O
    for doc in corpus.documents:
        assert "_" not in doc.text
        for span in doc.spans:
            assert doc.text[span.start:span.end] == span.text


@pytest.mark.parametrize("name", ["covid_style.conll", "covid_style.jsonl"])
def test_public_formats_round_trip_tags(name):
    corpus = read_corpus(FIXTURES / name)  # no map: the data's own label set
    assert "PERSON_NAME" in corpus.labels
    source = FIXTURES / name
    if name.endswith(".jsonl"):
        expected = [json.loads(line)["tags"] for line in source.read_text(encoding="utf-8").splitlines()]
    else:
        blocks = source.read_text(encoding="utf-8").split("\n\n")[1:]
        expected = [[line.split()[-1] for line in block.splitlines() if line.strip()] for block in blocks]
    for doc, tags in zip(corpus.documents, expected):
        (sentence,) = document_sentences(doc, RegexSegmenter())  # given words are kept
        assert sentence.tags == tags
        assert "_".join(sentence.surfaces()).count("_") >= len(tags) - 1
        assert set(tags_to_spans(sentence.words, sentence.tags, sentence.text)) == set(doc.spans)


def test_conll_tag_column_and_unmapped_types():
    corpus = read_corpus(FIXTURES / "vlsp_style.conll", tag_column=3, label_map={"PER": "PER", "LOC": "LOC", "ORG": "ORG"})
    assert [(s.text, s.label) for d in corpus.documents for s in d.spans] == [
        ("Nguyễn Văn Tâm", "PER"), ("Quảng Ninh", "LOC"), ("Báo Thanh Niên", "ORG")]


def test_conll_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Hà_Nội B-LOC\nđẹp X-Y\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"bad.conll: task line 2: word 'đẹp' has tag 'X-Y'"):
        read_corpus(path)


def test_schema_restricts_pre_segmented_labels(tmp_path):
    with pytest.raises(AnnotationError, match="PERSON_NAME"):
        read_corpus(FIXTURES / "covid_style.jsonl", schema=LabelSchema(labels=("PER",)))


def test_stats_command_prints_counts(capsys):
    from training.stats import main

    assert main([str(GOLD), "--labeling-config", str(GOLD.parent / "labeling_config.xml")]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "EVENT" in out and "000_796d6a87ad8d1a6e.txt" in out



# --- CoNLL as a table, label maps, invisible characters (a hostile pass over the readers) ---

def test_conll_line_with_more_columns_than_the_file_is_an_error_not_a_cut_word(tmp_path):
    path = tmp_path / "spaces.conll"
    path.write_text("Ông O\nĐỗ Hùng Việt B-PER\nđến O\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"spaces.conll: task line 2: 4 column\(s\), but the file's first line "
                                              r"has 2"):
        read_corpus(path)


def test_conll_no_break_space_stays_inside_its_word(tmp_path):
    path = tmp_path / "nbsp.conll"
    path.write_text("Ông O\nĐỗ\u00a0Hùng_Việt B-PER\nđến O\n", encoding="utf-8")
    (doc,) = read_corpus(path).documents
    assert [(s.text, s.label) for s in doc.spans] == [("Đỗ\u00a0Hùng Việt", "PER")]


def test_conll_tag_column_is_found_and_reported_for_vlsp_style_files():
    corpus = read_corpus(FIXTURES / "vlsp_style.conll")  # word POS chunk NER nested-NER
    assert [(s.text, s.label) for d in corpus.documents for s in d.spans] == [
        ("Nguyễn Văn Tâm", "PER"), ("Quảng Ninh", "LOC"), ("Báo Thanh Niên", "ORG"), ("Đại hội", "MISC")]
    assert any("entity tags read from column 3" in w and "data.tag_column" in w for w in corpus.warnings)
    nested = read_corpus(FIXTURES / "vlsp_style.conll", tag_column=4)
    assert [s for d in nested.documents for s in d.spans] == []


def test_conll_without_an_entity_column_asks_for_tag_column(tmp_path):
    path = tmp_path / "chunks.conll"
    path.write_text("Ông N B-NP\nViệt Np I-NP\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match="set data.tag_column"):
        read_corpus(path)
    with pytest.raises(AnnotationError, match="data.tag_column is 5, but the lines have 3 columns"):
        read_corpus(path, tag_column=5)


@pytest.mark.parametrize("fixture", ["vlsp_style.conll", "covid_style.jsonl"])
def test_types_a_label_map_drops_are_counted_in_a_warning(fixture):
    label_map = {"PER": "PER", "LOC": "LOC", "ORG": "ORG", "PATIENT_ID": "PER"}
    corpus = read_corpus(FIXTURES / fixture, label_map=label_map)
    dropped = [w for w in corpus.warnings if "the label map makes O dropped" in w]
    assert len(dropped) == 1 and str(FIXTURES / fixture) in dropped[0]
    kept = {s.label for d in corpus.documents for s in d.spans}
    assert kept <= {"PER", "LOC", "ORG"}


def test_i_tag_repair_names_the_word_and_its_line(tmp_path):
    path = tmp_path / "iob1.conll"
    path.write_text("Ông O\nViệt_Nam I-LOC\n", encoding="utf-8")
    corpus = read_corpus(path)
    assert [s.label for d in corpus.documents for s in d.spans] == ["LOC"]
    assert any("line 2: word 'Việt_Nam': I-LOC" in w and "read as B-LOC" in w for w in corpus.warnings)


def test_several_labels_are_an_error_even_when_the_map_drops_one(tmp_path):
    task = make_task(TEXT, [(11, 23, "PER")])
    task["annotations"][0]["result"][0]["value"]["labels"] = ["PER", "MISC"]
    path = write_export(tmp_path / "two.json", [task])
    with pytest.raises(AnnotationError, match="several labels"):
        read_corpus(path, label_map={"PER": "PER"})


@pytest.mark.parametrize("mark", ["\u200b", "\ufeff", "\x07"])
def test_invisible_characters_at_a_span_edge_are_trimmed_like_whitespace(tmp_path, mark):
    from training.text.segmentation import get_segmenter

    text = f"Ông {mark}Đỗ Hùng Việt{mark} đến."
    start, end = 4, 4 + len("Đỗ Hùng Việt") + 2
    path = write_export(tmp_path / "edge.json", [make_task(text, [(start, end, "PER")])])
    corpus = read_corpus(path)
    (doc,) = corpus.documents
    assert [s.text for s in doc.spans] == ["Đỗ Hùng Việt"]
    assert any("invisible characters" in w and "trimmed" in w for w in corpus.warnings)
    (sentence,) = document_sentences(doc, get_segmenter("underthesea"))
    assert "B-PER" in sentence.tags


def test_a_span_of_invisible_characters_only_is_an_error(tmp_path):
    text = "Ông \u200b đến."
    path = write_export(tmp_path / "zw.json", [make_task(text, [(4, 5, "PER")])])
    with pytest.raises(AnnotationError, match="task 7.*only whitespace or invisible characters"):
        read_corpus(path)


def test_a_span_edge_inside_an_nfd_character_is_reported(tmp_path):
    text = unicodedata.normalize("NFD", "Ông Việt đến")
    start = text.index("Vi")
    cut = write_export(tmp_path / "cut.json", [make_task(text, [(start, start + 3, "PER")])])  # 'Vie' without marks
    corpus = read_corpus(cut)
    assert any("inside a character" in w for w in corpus.warnings)
    marks = write_export(tmp_path / "marks.json", [make_task(text, [(start + 3, start + 4, "PER")])])
    with pytest.raises(AnnotationError, match="only part of a character"):
        read_corpus(marks)


def test_the_latest_annotation_wins_across_time_zones(tmp_path):
    task = make_task(TEXT, [(11, 23, "PER")])
    older = {"id": 1, "updated_at": "2026-01-01T10:00:00+07:00", "result": []}  # 03:00 UTC
    newer = {**task["annotations"][0], "id": 2, "updated_at": "2026-01-01T05:00:00Z"}
    task["annotations"] = [older, newer]
    (doc,) = read_corpus(write_export(tmp_path / "tz.json", [task])).documents
    assert [s.label for s in doc.spans] == ["PER"]


def test_format_detection_ignores_case_and_names_unreadable_formats(tmp_path):
    from training.data.readers import detect_format

    assert detect_format(tmp_path / "a.JSONL") == "jsonl"
    assert detect_format(tmp_path / "a.IOB2") == "conll"
    with pytest.raises(AnnotationError, match="CSV exports are not read"):
        detect_format(tmp_path / "export.csv")
    with pytest.raises(AnnotationError, match="this is JSON, not CoNLL"):
        read_corpus(GOLD, fmt="conll")


def test_a_flood_of_problems_is_cut_in_the_message():
    error = AnnotationError([f"problem {i}" for i in range(500)])
    assert len(error.problems) == 500
    assert "problem 49\n" in str(error) and "problem 50\n" not in str(error) and "... and 450 more" in str(error)
