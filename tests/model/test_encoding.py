"""The model layer's input side: sub-token windows, word shapes and hashed word features."""

import zlib


from training.data.sentences import document_sentences
from training.model.encoding import fit_windows, length_batches
from training.text.bio import tags_to_spans


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
    from training.model.word_features import (
        MAX_FEATURES,
        feature_strings,
        fine_shape,
        hashed_features,
    )

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



def test_length_batches_bound_sentences_and_padded_tokens():
    lengths = [40, 5, 300, 7, 6, 41, 8, 120, 5, 39]
    batches = length_batches(lengths, max_sentences=3, max_tokens=128)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))  # each sentence once
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(lengths)  # grouped by length: short ones are never padded to long ones
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 128
    assert [lengths[i] for i in batches[-1]] == [300]  # longer than the budget: alone
    assert length_batches([], 4, 100) == []
    assert length_batches([10] * 10, 64, 1024) == [list(range(10))]
