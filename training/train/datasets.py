"""Labelled sentences -> the Trainer's rows: sub-token ids, word shapes, hashed word
features and labels on each word's first sub-token, cut into windows by the model
layer's one windowing rule (`fit_windows`)."""

from __future__ import annotations

from typing import Sequence

import datasets

from ..data.sentences import LabelledSentence, document_sentences
from ..model.encoding import WordPieces, encode_words, fit_windows, label_positions, model_features
from ..text.documents import Document
from ..text.segmentation import Segmenter


def sentences_of(documents: Sequence[Document], segmenter: Segmenter) -> list[LabelledSentence]:
    return [s for doc in documents for s in document_sentences(doc, segmenter)]


class SentenceDataset:
    """Encoded windows of labelled sentences, one row each."""

    def __init__(self, sentences: list[LabelledSentence], pieces: WordPieces, tag_ids: dict[str, int],
                 max_length: int, word_shapes: bool = False, feature_buckets: int = 0):
        self.features = []
        for sentence in sentences:
            words = sentence.surfaces()
            for begin, end in fit_windows(pieces, words, max_length, sentence.tags):
                encoded = encode_words(pieces, words[begin:end], max_length, feature_buckets)
                self.features.append({
                    **model_features(encoded, word_shapes),
                    "labels": label_positions(encoded, [tag_ids[t] for t in sentence.tags[begin:end]]),
                })

    def to_hf(self) -> datasets.Dataset:
        return datasets.Dataset.from_list(self.features)

    def token_count(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)
