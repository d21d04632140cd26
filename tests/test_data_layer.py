"""Annotations -> documents -> BIO sentences, and back."""

import json
import unicodedata
import zlib

import pytest

from conftest import FIXTURES, GOLD, make_task, write_export
from training.text.bio import is_valid_iob2, repair_tags, spans_to_tags, tags_to_spans
from training.text.documents import Span, normalize_nfc
from training.data.readers import AnnotationError, read_corpus
from training.text.schema import DEFAULT_LABELS, LabelSchema, read_labeling_config
from training.text.segmentation import RegexSegmenter
from training.data.sentences import document_sentences, split_at_boundaries
from training.model.encoding import fit_windows

TEXT = "Thứ trưởng Đỗ Hùng Việt dẫn đầu đoàn Việt Nam tại Viêng Chăn (Lào)."


def test_labeling_config_gives_the_five_types(schema):
    assert schema.labels == DEFAULT_LABELS
    assert (schema.from_name, schema.to_name, schema.text_key) == ("label", "text", "text")


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


def test_segmenter_word_crossing_a_span_is_split_at_the_gold_boundary(segmenter):
    text = "Trưởng SOM ASEAN Việt Nam Đỗ Hùng Việt phát biểu."
    start = text.index("ASEAN")
    words = [w for sentence in segmenter.segment(text) for w in sentence]
    assert any(text[a:b] == "SOM ASEAN" for a, b in words), "premise: underthesea joins SOM ASEAN"
    split = split_at_boundaries(words, {start, start + 5}, text)
    assert (start, start + 5) in split
    assert (text.index("SOM"), text.index("SOM") + 3) in split


def test_segmenter_offsets_are_exact_on_odd_text(segmenter):
    text = "A\u200bB 😀 ngày 24-27.7  tại\tViêng Chăn\r\n“ASEAN+3”…"
    for sentence in segmenter.segment(text):
        for a, b in sentence:
            piece = text[a:b]
            assert piece and piece == piece.strip() and "\n" not in piece


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


def test_normalize_nfc_maps_offsets_both_ways():
    original = unicodedata.normalize("NFD", "Đỗ Hùng Việt")
    norm = normalize_nfc(original)
    assert norm.text == "Đỗ Hùng Việt"
    start = norm.text.index("Việt")
    a, b = norm.original_index(start), norm.original_index(start + 4)
    assert unicodedata.normalize("NFC", original[a:b]) == "Việt"
    assert norm.nfc_index(a) == start and norm.nfc_index(b) == start + 4


# --- validation: every error names the file, the task and the span -------------------

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


# --- pre-segmented public-corpus formats ----------------------------------------------

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
    with pytest.raises(AnnotationError, match=r"bad.conll: task line 1.*'X-Y'"):
        read_corpus(path)


def test_schema_restricts_pre_segmented_labels(tmp_path):
    with pytest.raises(AnnotationError, match="PERSON_NAME"):
        read_corpus(FIXTURES / "covid_style.jsonl", schema=LabelSchema(labels=("PER",)))


# --- BIO -------------------------------------------------------------------------------

def test_bio_repair_rule():
    assert repair_tags(["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-LOC"]
    words = [(0, 1), (2, 3), (4, 5)]
    assert tags_to_spans(words, ["O", "I-PER", "I-PER"], "a b c") == [Span(2, 5, "PER", "b c")]


def test_spans_that_do_not_align_are_refused():
    with pytest.raises(ValueError):
        spans_to_tags([(0, 5)], [Span(0, 3, "PER")])


class TwoTokenWords:
    """Stands in for WordPieces: every word costs two sub-tokens."""

    def count(self, word: str) -> int:
        return 2


def test_long_sentences_are_cut_into_windows_without_cutting_entities(gold, segmenter):
    doc = gold.documents[0]
    (sentence,) = [s for s in document_sentences(doc, segmenter) if len(s.words) > 60][:1]
    windows = fit_windows(TwoTokenWords(), sentence.surfaces(), max_length=22, tags=sentence.tags)
    assert len(windows) > 1
    assert windows[0][0] == 0 and windows[-1][1] == len(sentence.words)
    assert all(end == begin for (_, end), (begin, _) in zip(windows, windows[1:]))  # contiguous, in order
    for begin, end in windows:
        assert 2 * (end - begin) <= 20
        assert not sentence.tags[begin].startswith("I-")
    pieces = [tags_to_spans(sentence.words[a:b], sentence.tags[a:b], sentence.text) for a, b in windows]
    assert {s for spans in pieces for s in spans} == set(tags_to_spans(sentence.words, sentence.tags, sentence.text))


def test_stats_command_prints_counts(capsys):
    from training.stats import main

    assert main([str(GOLD), "--labeling-config", str(GOLD.parent / "labeling_config.xml")]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "EVENT" in out and "000_796d6a87ad8d1a6e.txt" in out


def test_labeling_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "config.xml"
    bad.write_text("<View><Text name='t' value='$t'/></View>", encoding="utf-8")
    with pytest.raises(ValueError, match="config.xml"):
        read_labeling_config(bad)


def test_word_shapes_and_their_token_type_ids():
    from training.model.encoding import SHAPES, WordPieces, encode_words, word_shape

    shapes = {w: SHAPES[word_shape(w)] for w in
              ["Việt_Nam", "Thứ_trưởng", "ASEAN", "họp", "23.7", ",", "Timor-Leste", "AMM-57", "Đỗ_Hùng_Việt"]}
    assert shapes == {"Việt_Nam": "title", "Thứ_trưởng": "capitalized", "ASEAN": "upper", "họp": "lower",
                      "23.7": "numeric", ",": "punct", "Timor-Leste": "title", "AMM-57": "numeric",
                      "Đỗ_Hùng_Việt": "title"}

    class Tokenizer:  # two sub-tokens per word
        cls_token_id, sep_token_id, pad_token_id, unk_token_id = 0, 2, 1, 3

        def tokenize(self, word, split_special_tokens=True):
            return [word[:1] + "@@", word[1:]]

        def convert_tokens_to_ids(self, tokens):
            return [10 + len(t) for t in tokens]

    encoded = encode_words(WordPieces(Tokenizer()), ["ASEAN", "họp"])
    assert encoded.first_token == [1, 3]
    assert encoded.token_type_ids == [0, 3, 3, 4, 4, 0]


def test_word_features_are_stable_fixed_width_and_see_the_neighbours():
    from training.model.encoding import WordPieces, encode_words
    from training.model.word_features import MAX_FEATURES, feature_strings, fine_shape, hashed_features

    words = ["Thứ_trưởng", "Đỗ", "Hùng_Việt", "dự", "họp", "ngày", "23/7/2024", "."]
    strings = feature_strings(words)
    assert "-1w=Thứ_trưởng" in strings[1] and "+1b=đỗ|hùng_việt" in strings[1] and "1l=dự" in strings[2] and "2l=họp" in strings[2]
    assert "-2w=<s>" in strings[0] and "2w=</s>" in strings[-1]
    # template 3: the words 3 away (lower case) and the ±1 neighbours' first/last syllables
    assert "3l=ngày" in strings[2] and "-3l=<pad>" in strings[2] and "-3l=thứ_trưởng" in strings[3]
    assert "-1fs=thứ" in strings[1] and "-1ls=trưởng" in strings[1] and "1fs=hùng" in strings[1] and "1ls=việt" in strings[1]
    # word classes of the word and its neighbours, and the sentence edges
    assert "f=title" in strings[1] and "-1f=title" in strings[2] and "f=title" not in strings[3]
    assert "f=hasdigit" in strings[6] and "f=digit" not in strings[6] and "f=punct" in strings[7]
    assert "first" in strings[0] and "last" in strings[-1] and "first" not in strings[1]
    assert fine_shape("Hà_Nội") == "Xx_Xx" and fine_shape("23/7/2024") == "d/d/d"
    ids = hashed_features(words, 1000)
    assert all(1 <= i < 1000 for row in ids for i in row) and max(len(r) for r in ids) <= MAX_FEATURES
    # CRC-32, not the salted hash(): the same ids in every process
    assert ids == hashed_features(words, 1000) and ids[0][0] == zlib.crc32(b"bias") % 999 + 1

    class Tokenizer:  # two sub-tokens per word
        cls_token_id, sep_token_id, pad_token_id, unk_token_id = 0, 2, 1, 3

        def tokenize(self, word, split_special_tokens=True):
            return [word[:1], word[1:] or "x"]

        def convert_tokens_to_ids(self, tokens):
            return [10 + len(t) for t in tokens]

    encoded = encode_words(WordPieces(Tokenizer()), words[:3], feature_buckets=1000)
    rows = encoded.word_features
    assert len(rows) == len(encoded.input_ids) and all(len(r) == MAX_FEATURES for r in rows)
    first = set(encoded.first_token)
    for position, row in enumerate(rows):
        assert any(row) == (position in first)  # features only at each word's first sub-token
    assert rows[encoded.first_token[1]][: len(ids[1])] == hashed_features(words[:3], 1000)[1]
