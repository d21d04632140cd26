"""The inference module: raw text -> entities with exact character offsets.

    from training import load_model, predict
    model = load_model("models/tiny-asean")
    model.predict("Ngày 23.7, Thứ trưởng Đỗ Hùng Việt ...")     # or a list of texts
    predict("...", model="models/tiny-asean")                    # one-call form

It imports only what inference needs: torch, transformers and the segmenter (never
`datasets`, `seqeval` or `label_studio_sdk`). The text goes through the same steps as
in training: NFC normalisation (offsets mapped back to the input as given), sentence
split and word segmentation, windows of at most 256 PhoBERT tokens, and constrained
Viterbi decoding, so no invalid IOB2 sequence can come out.

Entity score: the mean, over the entity's words, of the probability the model gives
the tag it chose for that word: the softmax of the word's emissions (encoder logits at
its first sub-token, plus word features when the model has them); for the crf head
too, so not CRF marginals.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import AbstractSet, Iterable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from ..model.artifact import load_parts
from ..model.decoding import best_path, transition_mask
from ..model.encoding import (
    encode_words,
    fit_windows,
    length_batches,
    model_features,
    pad_batch,
    uses_word_shapes,
    word_pieces,
)
from ..text.bio import tags_to_spans
from ..text.documents import Span, normalize_nfc
from ..text.segmentation import WordRange, get_segmenter, word_surface
from .precision import Precision, choose_precision, quantize_linear_layers

# A forward pass: at most this many sentences and padded tokens (`length_batches`).
BATCH_SIZE = 64
BATCH_TOKENS = 1024


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TaggedSentence:
    tags: list[str]
    scores: list[float]  # probability of the chosen tag, per word


class NerModel:
    """An exported model ready to tag text. Build it with `load_model`."""

    def __init__(self, tagger, tokenizer, settings: dict, path: Path, precision: Precision, device: torch.device):
        dtype = precision.dtype
        tagger.to(device).eval()
        tagger.encoder.to(dtype)  # the CRF and the word features stay fp32: they are cheap
        if precision.int8:
            quantize_linear_layers(tagger.encoder)
        self.tagger = tagger
        self.tokenizer = tokenizer
        self.settings = settings
        self.path = path
        self.dtype = dtype
        self.precision = precision
        self.device = device
        self.tags = list(tagger.tags)
        self.labels = sorted({tag[2:] for tag in self.tags if tag != "O"})
        self.max_length = int(settings.get("max_length", 256))
        segmenter = settings.get("segmenter", {"name": "underthesea"})
        self.segmenter = get_segmenter(segmenter["name"], **segmenter.get("settings", {}))
        self.pieces = word_pieces(tokenizer, tagger.config)
        self.word_shapes = uses_word_shapes(tagger.config)
        self._start, self._trans = transition_mask(self.tags)

    def __repr__(self) -> str:
        return (f"NerModel({str(self.path)!r}, labels={self.labels}, head={self.tagger.head!r}, "
                f"device={self.device.type!r}, precision={str(self.precision)!r})")

    # -- word level (shared with evaluation) -------------------------------------------
    @torch.inference_mode()
    def tag_words(self, sentences: Sequence[Sequence[str]], batch_size: int = BATCH_SIZE,
                  batch_tokens: int = BATCH_TOKENS) -> list[TaggedSentence]:
        """Tag each sentence of words (each must fit `max_length`; see `fit_windows`), in
        passes of at most `batch_size` sentences and `batch_tokens` padded tokens."""
        if batch_size < 1 or batch_tokens < 1:
            raise ValueError(f"batch_size and batch_tokens must be at least 1, not {batch_size} and {batch_tokens}")
        encoded = [encode_words(self.pieces, words, self.max_length, self.tagger.feature_buckets)
                   for words in sentences]
        results: list[TaggedSentence | None] = [None] * len(encoded)
        for members in length_batches([len(e.input_ids) for e in encoded], batch_size, batch_tokens):
            batch = pad_batch([model_features(encoded[i], self.word_shapes) for i in members], self.pieces.pad_id)
            logits = self.tagger(**{key: value.to(self.device) for key, value in batch.items()}).logits
            logits = logits.float().cpu()
            log_probs = torch.log_softmax(logits, dim=-1)
            for row, index in enumerate(members):
                positions = encoded[index].first_token
                word_scores = log_probs[row, positions]
                path = best_path(logits[row, positions], self._start, self._trans, self.tagger.crf)
                chosen = word_scores[torch.arange(len(path)), torch.tensor(path, dtype=torch.long)] if path else word_scores[:0, 0]
                results[index] = TaggedSentence([self.tags[p] for p in path], chosen.exp().tolist())
        return results  # type: ignore[return-value]

    # -- text level ----------------------------------------------------------------------
    def predict(self, texts: str | Iterable[str], batch_size: int = BATCH_SIZE, batch_tokens: int = BATCH_TOKENS,
                progress: bool = False):
        """Entities for one text (a list of `Entity`) or for many (a list of lists).
        `batch_size` and `batch_tokens` bound a forward pass (sentences, padded tokens):
        they change speed and memory; the entities only through floating-point rounding."""
        for name, value in (("batch_size", batch_size), ("batch_tokens", batch_tokens)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"predict(): {name} must be an int, not {type(value).__name__}")
        if isinstance(texts, str):
            return self._predict_many([texts], batch_size, batch_tokens, progress)[0]
        # a mapping would be tagged by its keys and a set in no stable order: results
        # must line up with an ordered sequence of texts
        if (isinstance(texts, (bytes, bytearray, Mapping, AbstractSet)) or texts is None
                or not isinstance(texts, Iterable)):
            raise TypeError(f"predict() takes a str or a list of str, not {type(texts).__name__}")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"predict() takes a str or a list of str; item {i} is {type(text).__name__}")
        return self._predict_many(texts, batch_size, batch_tokens, progress)

    def entity_spans(self, jobs: Sequence[tuple[str, Sequence[Sequence[WordRange]]]],
                     batch_size: int = BATCH_SIZE, batch_tokens: int = BATCH_TOKENS,
                     ) -> list[list[tuple[Span, float]]]:
        """For each (NFC text, sentences of word ranges): predicted spans with scores.
        The one path from words to spans, shared by predict() and evaluation."""
        windows: list[Sequence[WordRange]] = []
        surfaces: list[list[str]] = []
        owners: list[int] = []
        for index, (text, sentences) in enumerate(jobs):
            for words in sentences:
                words_text = [word_surface(text, word) for word in words]
                for begin, end in fit_windows(self.pieces, words_text, self.max_length):
                    windows.append(words[begin:end])
                    surfaces.append(words_text[begin:end])
                    owners.append(index)
        results: list[list[tuple[Span, float]]] = [[] for _ in jobs]
        for words, tagged, owner in zip(windows, self.tag_words(surfaces, batch_size, batch_tokens), owners):
            text = jobs[owner][0]
            first_word = {start: k for k, (start, _) in enumerate(words)}
            last_word = {end: k for k, (_, end) in enumerate(words)}
            for span in tags_to_spans(words, tagged.tags, text):
                first, last = first_word[span.start], last_word[span.end]
                results[owner].append((span, sum(tagged.scores[first:last + 1]) / (last - first + 1)))
        return results

    def _predict_many(self, texts: list[str], batch_size: int, batch_tokens: int,
                      progress: bool) -> list[list[Entity]]:
        iterator = texts
        if progress:
            iterator = tqdm(texts, desc="segmenting", unit="text")
        normalized, jobs = [], []
        for text in iterator:
            norm = normalize_nfc(text)
            normalized.append(norm)
            jobs.append((norm.text, self.segmenter.segment(norm.text)))
        results: list[list[Entity]] = []
        for text, norm, spans in zip(texts, normalized, self.entity_spans(jobs, batch_size, batch_tokens)):
            entities = []
            for span, score in spans:
                start, end = norm.original_index(span.start), norm.original_index(span.end)
                if start < end:
                    entities.append(Entity(text[start:end], span.label, start, end, round(score, 4)))
            entities.sort(key=lambda e: (e.start, e.end))
            results.append(entities)
        return results


def load_model(path: str | os.PathLike, precision: str = "auto", num_threads: int | None = None,
               device: str | None = None) -> NerModel:
    """Load an exported model directory (no network). `precision`: auto, fp32, bf16 or int8
    (see inference/precision.py)."""
    path = Path(path)
    if num_threads:
        torch.set_num_threads(num_threads)
    parts = load_parts(path)
    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return NerModel(parts.tagger, parts.tokenizer, parts.settings, path, choose_precision(precision, torch_device),
                    torch_device)


_LOADED: dict[tuple[str, str], NerModel] = {}
_LOCK = threading.Lock()


def predict(texts: str | Iterable[str], model: str | os.PathLike | NerModel, precision: str = "auto", **kwargs):
    """One-call form: loads `model` once per process (cached by path), then predicts."""
    if not isinstance(model, NerModel):
        key = (str(Path(model).resolve()), precision)
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = load_model(model, precision=precision)
            model = _LOADED[key]
    return model.predict(texts, **kwargs)
