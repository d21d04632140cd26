"""Words -> PhoBERT sub-token ids, one word at a time.

PhobertTokenizer is a Python tokenizer without `word_ids()` or offset mappings, so we
tokenize word by word (cached: news repeats its words) and keep, per word, the index
of its first sub-token. Training puts the word's label there (-100 elsewhere, as in
the Hugging Face `run_ner.py` example); prediction reads the scores there.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Sequence

import torch

from .word_features import MAX_FEATURES, hashed_features

IGNORE_INDEX = -100

# PhoBERT: 258 positions = 256 tokens, of which <s> and </s> take two.
MAX_CONTENT_TOKENS = 254

# Word shapes, the capitalisation/digit/punctuation pattern a feature CRF relies on.
# A backbone whose config says `word_shapes: true` reads them as token_type_ids (the
# tiny offline backbone does; PhoBERT, with one token type, does not).
SHAPES = ("special", "title", "capitalized", "upper", "lower", "numeric", "punct", "mixed")


@functools.lru_cache(maxsize=1 << 16)
def word_shape(word: str) -> int:
    """Shape class of a PhoBERT word (syllables joined by `_`): `Việt_Nam` title,
    `Thứ_trưởng` capitalized, `ASEAN` upper, `họp` lower, `23.7` numeric, `,` punct."""
    syllables = [s for s in re.split(r"[_\-]", word) if s]
    if any(c.isdigit() for c in word):
        return SHAPES.index("numeric")
    if not any(c.isalpha() for c in word):
        return SHAPES.index("punct")
    if all(s.isupper() for s in syllables if any(c.isalpha() for c in s)) and any(len(s) > 1 for s in syllables):
        return SHAPES.index("upper")
    if all(s[:1].isupper() and (len(s) == 1 or s[1:].islower()) for s in syllables):
        return SHAPES.index("title")
    if word.islower():
        return SHAPES.index("lower")
    if syllables[0][:1].isupper() and all(s.islower() for s in syllables[1:]):
        return SHAPES.index("capitalized")
    return SHAPES.index("mixed")


def uses_word_shapes(model_config) -> bool:
    return bool(getattr(model_config, "word_shapes", False))


def word_pieces(tokenizer, model_config) -> "WordPieces":
    """The WordPieces a model was trained with (lower-casing as its config says)."""
    return WordPieces(tokenizer, lowercase=bool(getattr(model_config, "lowercase_words", False)))


class WordPieces:
    """Cached word -> sub-token ids for one tokenizer. With `lowercase` (a backbone whose
    config says `lowercase_words: true`), words are lower-cased first: case then reaches
    the model through the word shapes only, and `Hội_nghị`/`hội_nghị` share statistics."""

    def __init__(self, tokenizer, lowercase: bool = False):
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self._cache: dict[str, list[int]] = {}
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        self.unk_id = tokenizer.unk_token_id

    def ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is None:
            # split_special_tokens: a text saying "</s>" or "<mask>" is text, not a control token
            tokens = self.tokenizer.tokenize(word.lower() if self.lowercase else word, split_special_tokens=True)
            cached = self.tokenizer.convert_tokens_to_ids(tokens) or [self.unk_id]
            self._cache[word] = cached
        return cached

    def count(self, word: str) -> int:
        return len(self.ids(word))


@dataclass
class EncodedSentence:
    input_ids: list[int]
    first_token: list[int]  # per word, the position of its first sub-token
    token_type_ids: list[int]  # the word's shape on each of its sub-tokens, 0 on <s> </s>
    # hashed word features (word_features.py), a row per sub-token, filled at first sub-tokens
    word_features: list[list[int]] | None = None


def encode_words(pieces: WordPieces, words: Sequence[str], max_length: int = 256,
                 feature_buckets: int = 0) -> EncodedSentence:
    """`<s> w1 w2 ... </s>`, truncating sub-tokens (never whole words) to fit: a word
    that does not fit keeps only its first sub-token, so every word gets a position.
    With `feature_buckets`, also the words' hashed features (word_features.py)."""
    budget = max_length - 2 - len(words)  # room for extra sub-tokens beyond one per word
    if budget < 0:
        raise ValueError(f"{len(words)} words do not fit in {max_length} positions; split the sentence first")
    input_ids = [pieces.cls_id]
    shapes = [0]
    first_token = []
    for word in words:
        ids = pieces.ids(word)
        extra = min(len(ids) - 1, budget)
        budget -= extra
        first_token.append(len(input_ids))
        input_ids.extend(ids[: 1 + extra])
        shapes.extend([word_shape(word)] * (1 + extra))
    input_ids.append(pieces.sep_id)
    shapes.append(0)
    encoded = EncodedSentence(input_ids, first_token, shapes)
    if feature_buckets:
        rows = [[0] * MAX_FEATURES for _ in input_ids]
        for position, ids in zip(first_token, hashed_features(words, feature_buckets)):
            rows[position][: len(ids)] = ids
        encoded.word_features = rows
    return encoded


def model_features(encoded: EncodedSentence, word_shapes: bool) -> dict[str, list]:
    """The model's inputs for one sentence (unpadded)."""
    features = {"input_ids": encoded.input_ids, "attention_mask": [1] * len(encoded.input_ids)}
    if word_shapes:
        features["token_type_ids"] = encoded.token_type_ids
    if encoded.word_features is not None:
        features["word_features"] = encoded.word_features
    return features


def pad_batch(features: Sequence[dict], pad_id: int) -> dict:
    """Right-pad a batch of `model_features` dicts (plus `labels`) into int64 tensors: the
    Trainer's collator and predict()'s batches. Values are lists (`model_features`) or
    tensors of any integer type (the training rows, `train.datasets.SentenceDataset`)."""
    width = max(len(f["input_ids"]) for f in features)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0, "word_features": 0,
            "labels": IGNORE_INDEX}
    batch = {}
    for key in features[0]:
        if torch.is_tensor(features[0][key]):  # copy each row into a padded block: no list conversion
            tail = tuple(features[0][key].shape[1:])
            padded = torch.full((len(features), width, *tail), fill[key], dtype=torch.long)
            for row, f in zip(padded, features):
                row[:len(f[key])] = f[key]
        elif key == "word_features":
            padded = torch.tensor([f[key] + [[0] * len(f[key][0])] * (width - len(f[key])) for f in features],
                                  dtype=torch.long)
        else:
            padded = torch.tensor([list(f[key]) + [fill[key]] * (width - len(f[key])) for f in features],
                                  dtype=torch.long)
        batch[key] = padded
    return batch


def length_batches(lengths: Sequence[int], max_sentences: int, max_tokens: int) -> list[list[int]]:
    """Indices of sentences (by their token `lengths`) grouped into forward passes: sorted
    by length, each pass at most `max_sentences` rows and at most `max_tokens` padded
    tokens (rows x its longest), a longer sentence alone. On a CPU a pass costs what its
    padded tokens cost, so a few long sentences must not pad a batch of short ones, while
    short ones still share a pass (docs/benchmarks.md, "Prediction speed")."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) == max_sentences or (len(current) + 1) * lengths[index] > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def label_positions(encoded: EncodedSentence, label_ids: Sequence[int]) -> list[int]:
    """Labels aligned to sub-tokens: the word's label on its first sub-token, -100 elsewhere."""
    labels = [IGNORE_INDEX] * len(encoded.input_ids)
    for position, label in zip(encoded.first_token, label_ids):
        labels[position] = label
    return labels


def fit_windows(pieces: WordPieces, words: Sequence[str], max_length: int,
                tags: Sequence[str] | None = None) -> list[tuple[int, int]]:
    """Word ranges `[begin, end)` of at most `max_length - 2` sub-tokens (and at most
    PhoBERT's 254), covering `words` in order: the one windowing rule of training,
    masked-LM warm-up and prediction, so a model always sees text cut the way it was
    trained on.

    Cuts go at the last word boundary that fits and is not inside an entity (with
    `tags`, an `I-` word is never the first of a window), preferring one right after
    punctuation. A single word longer than the limit is kept alone (`encode_words`
    truncates its sub-tokens; its first sub-token still carries the label).
    """
    max_tokens = min(MAX_CONTENT_TOKENS, max_length - 2)
    costs = [max(1, pieces.count(w)) for w in words]
    n = len(costs)
    if sum(costs) <= max_tokens:
        return [(0, n)]
    ranges: list[tuple[int, int]] = []
    begin = 0
    while begin < n:
        total, end = 0, begin
        while end < n and total + costs[end] <= max_tokens:
            total += costs[end]
            end += 1
        if end == n:
            cut = n
        else:
            end = max(end, begin + 1)
            candidates = [c for c in range(begin + 1, end + 1)
                          if c == n or tags is None or not tags[c].startswith("I-")]
            punctuated = [c for c in candidates if not words[c - 1][-1:].isalnum()]
            cut = (punctuated or candidates or [end])[-1]
        ranges.append((begin, cut))
        begin = cut
    return ranges
