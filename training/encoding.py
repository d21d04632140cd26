"""Words -> PhoBERT sub-token ids, one word at a time.

PhobertTokenizer is a Python tokenizer without `word_ids()` or offset mappings, so we
tokenize word by word (cached: news repeats its words) and keep, per word, the index
of its first sub-token. Training puts the word's label there (-100 elsewhere, as in
the Hugging Face `run_ner.py` example); prediction reads the scores there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

IGNORE_INDEX = -100


class WordPieces:
    """Cached word -> sub-token ids for one tokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.pad_id = tokenizer.pad_token_id
        self.unk_id = tokenizer.unk_token_id

    def ids(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is None:
            # split_special_tokens: a text saying "</s>" or "<mask>" is text, not a control token
            tokens = self.tokenizer.tokenize(word, split_special_tokens=True)
            cached = self.tokenizer.convert_tokens_to_ids(tokens) or [self.unk_id]
            self._cache[word] = cached
        return cached

    def count(self, word: str) -> int:
        return len(self.ids(word))


@dataclass
class EncodedSentence:
    input_ids: list[int]
    first_token: list[int]  # per word, the position of its first sub-token


def encode_words(pieces: WordPieces, words: Sequence[str], max_length: int = 256) -> EncodedSentence:
    """`<s> w1 w2 ... </s>`, truncating sub-tokens (never whole words) to fit: a word
    that does not fit keeps only its first sub-token, so every word gets a position."""
    budget = max_length - 2 - len(words)  # room for extra sub-tokens beyond one per word
    if budget < 0:
        raise ValueError(f"{len(words)} words do not fit in {max_length} positions; split the sentence first")
    input_ids = [pieces.cls_id]
    first_token = []
    for word in words:
        ids = pieces.ids(word)
        extra = min(len(ids) - 1, budget)
        budget -= extra
        first_token.append(len(input_ids))
        input_ids.extend(ids[: 1 + extra])
    input_ids.append(pieces.sep_id)
    return EncodedSentence(input_ids, first_token)


def label_positions(encoded: EncodedSentence, label_ids: Sequence[int]) -> list[int]:
    """Labels aligned to sub-tokens: the word's label on its first sub-token, -100 elsewhere."""
    labels = [IGNORE_INDEX] * len(encoded.input_ids)
    for position, label in zip(encoded.first_token, label_ids):
        labels[position] = label
    return labels
