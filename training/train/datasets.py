"""Labelled sentences -> the Trainer's rows: sub-token ids, word shapes, hashed word
features and labels on each word's first sub-token, cut into windows by the model
layer's one windowing rule (`fit_windows`).

Rows are tensors from the start (int32; `pad_batch` pads them into int64 batches), so
a training step's collation copies memory instead of converting nested Python lists,
and a large corpus's rows take a fraction of the memory lists of ints would."""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..data.sentences import LabelledSentence, document_sentences
from ..model.encoding import WordPieces, encode_words, fit_windows, label_positions, model_features
from ..text.documents import Document
from ..text.segmentation import Segmenter

# a bar for a phase appears only once it has taken this many seconds
PROGRESS_DELAY = 2.0


def sentences_of(documents: Sequence[Document], segmenter: Segmenter) -> list[LabelledSentence]:
    progress = tqdm(documents, desc="segmenting", unit="doc", delay=PROGRESS_DELAY, leave=False)
    return [s for doc in progress for s in document_sentences(doc, segmenter)]


class SentenceDataset(torch.utils.data.Dataset):
    """Encoded windows of labelled sentences, one row (a dict of int32 tensors) each: the
    Trainer's train or eval dataset, collated by `pad_batch`."""

    def __init__(self, sentences: list[LabelledSentence], pieces: WordPieces, tag_ids: dict[str, int],
                 max_length: int, word_shapes: bool = False, feature_buckets: int = 0):
        self.features: list[dict[str, torch.Tensor]] = []
        for sentence in tqdm(sentences, desc="encoding", unit="sentence", delay=PROGRESS_DELAY, leave=False):
            words = sentence.surfaces()
            for begin, end in fit_windows(pieces, words, max_length, sentence.tags):
                encoded = encode_words(pieces, words[begin:end], max_length, feature_buckets)
                row = {**model_features(encoded, word_shapes),
                       "labels": label_positions(encoded, [tag_ids[t] for t in sentence.tags[begin:end]])}
                self.features.append({key: torch.tensor(value, dtype=torch.int32) for key, value in row.items()})

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.features[index]

    def token_count(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)
