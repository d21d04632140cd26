"""The text layer: label schemas, NFC offsets, IOB2 conversions, word segmentation."""

import unicodedata

import pytest

from training.data.sentences import split_at_boundaries
from training.text.bio import repair_tags, spans_to_tags, tags_to_spans
from training.text.documents import Span, normalize_nfc
from training.text.schema import DEFAULT_LABELS, read_labeling_config


def test_labeling_config_gives_the_five_types(schema):
    assert schema.labels == DEFAULT_LABELS
    assert (schema.from_name, schema.to_name, schema.text_key) == ("label", "text", "text")


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


def test_normalize_nfc_maps_offsets_both_ways():
    original = unicodedata.normalize("NFD", "Đỗ Hùng Việt")
    norm = normalize_nfc(original)
    assert norm.text == "Đỗ Hùng Việt"
    start = norm.text.index("Việt")
    a, b = norm.original_index(start), norm.original_index(start + 4)
    assert unicodedata.normalize("NFC", original[a:b]) == "Việt"
    assert norm.nfc_index(a) == start and norm.nfc_index(b) == start + 4


@pytest.mark.parametrize("text", [
    "\u1100\u1161\u11a8 Việt",  # Hangul L+V+T compose although V+T alone do not
    "a\u0f73\u0300 Lào",  # U+0F73 is a starter that decomposes into marks: no cluster boundary before it
    "\u0f71\u0f73\u093c",
    "Nam\u0344 x",  # U+0344 grows to two marks under NFC
    unicodedata.normalize("NFD", "Đỗ Hùng Việt") + "\u1100\u1161\u11a8",
])
def test_normalize_nfc_maps_every_index_on_texts_that_compose_across_characters(text):
    norm = normalize_nfc(text)
    assert norm.text == unicodedata.normalize("NFC", text)
    for i in range(len(norm.text) + 1):
        j = norm.original_index(i)
        assert 0 <= j <= len(text)
        assert norm.original_index(i) <= norm.original_index(min(i + 1, len(norm.text)))  # monotone
    # a word ending inside a character that grew keeps the whole character
    if "\u0344" in text:
        end = norm.text.index("m") + 1
        assert text[:norm.original_index(end)].endswith("m\u0344")


def test_segmenters_keep_words_whole_across_invisible_characters(segmenter):
    from training.text.segmentation import RegexSegmenter, word_surface

    text = "Ông Đỗ Hùng Vi\u200dệt tới Ja\u00adkarta \u2060hôm\u200b nay."
    for words in (segmenter.segment(text), RegexSegmenter().segment(text)):
        surfaces = [word_surface(text, w) for sentence in words for w in sentence]
        assert "Jakarta" in surfaces and not any(s in ("Vi", "ệt", "Ja", "karta") for s in surfaces), surfaces
        assert any(s.endswith("Việt") for s in surfaces), surfaces


def test_bio_repair_rule():
    assert repair_tags(["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-LOC"]
    words = [(0, 1), (2, 3), (4, 5)]
    assert tags_to_spans(words, ["O", "I-PER", "I-PER"], "a b c") == [Span(2, 5, "PER", "b c")]


def test_spans_that_do_not_align_are_refused():
    with pytest.raises(ValueError):
        spans_to_tags([(0, 5)], [Span(0, 3, "PER")])


def test_labeling_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "config.xml"
    bad.write_text("<View><Text name='t' value='$t'/></View>", encoding="utf-8")
    with pytest.raises(ValueError, match="config.xml"):
        read_labeling_config(bad)

