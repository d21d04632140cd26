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

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .bio import tags_to_spans
from .crf import CRF_FILE, LinearChainCRF
from .decoding import best_path, transition_mask
from .documents import Span, normalize_nfc
from .encoding import encode_words, model_features, pad_batch, uses_word_shapes, word_pieces
from .segmentation import WordRange, get_segmenter
from .sentences import MAX_CONTENT_TOKENS, LabelledSentence, split_to_fit
from .tagger import TokenTagger
from .word_features import FEATURES_FILE, TEMPLATE_VERSION, WordFeatureEmissions

SETTINGS_FILE = "ner_config.json"
WEIGHTS_FILE = "model.safetensors"
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, SETTINGS_FILE, "tokenizer_config.json")


class ModelLoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_bf16_flags() -> list[str]:
    """Which hardware bf16 paths this CPU has (Linux): `amx_bf16`, `avx512_bf16`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            info = handle.read()
    except OSError:
        return []
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in info]


def choose_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on GPUs that support it and on CPUs with AMX, fp32 elsewhere."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if "amx_bf16" in cpu_bf16_flags() else torch.float32


@dataclass
class TaggedSentence:
    tags: list[str]
    scores: list[float]  # probability of the chosen tag, per word


class NerModel:
    """An exported model ready to tag text. Build it with `load_model`."""

    def __init__(self, tagger, tokenizer, settings: dict, path: Path, dtype: torch.dtype, device: torch.device):
        tagger.to(device).eval()
        tagger.encoder.to(dtype)  # the CRF and the word features stay fp32: they are cheap
        self.tagger = tagger
        self.tokenizer = tokenizer
        self.settings = settings
        self.path = path
        self.dtype = dtype
        self.device = device
        self.tags = list(tagger.tags)
        self.labels = sorted({tag[2:] for tag in self.tags if tag != "O"})
        self.max_length = int(settings.get("max_length", 256))
        segmenter = settings.get("segmenter", {"name": "underthesea"})
        self.segmenter = get_segmenter(segmenter["name"], **segmenter.get("settings", {}))
        self.pieces = word_pieces(tokenizer, tagger.config)
        self.word_shapes = uses_word_shapes(tagger.config)
        self._start, self._trans = transition_mask(self.tags)

    # -- word level (shared with evaluation) -------------------------------------------
    def fit(self, sentence: LabelledSentence) -> list[LabelledSentence]:
        """Windows of at most `max_length` tokens (the same splitting as training)."""
        return split_to_fit(sentence, self.pieces.count, min(MAX_CONTENT_TOKENS, self.max_length - 2))

    @torch.inference_mode()
    def tag_sentences(self, sentences: Sequence[LabelledSentence], batch_size: int = 32) -> list[TaggedSentence]:
        """Tag each sentence (which must fit; see `fit`), batching by length."""
        encoded = [encode_words(self.pieces, s.surfaces(), self.max_length, self.tagger.feature_buckets)
                   for s in sentences]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        results: list[TaggedSentence | None] = [None] * len(encoded)
        for begin in range(0, len(order), batch_size):
            batch = pad_batch([model_features(encoded[i], self.word_shapes) for i in order[begin:begin + batch_size]],
                              self.pieces.pad_id)
            logits = self.tagger(**{key: value.to(self.device) for key, value in batch.items()}).logits
            logits = logits.float().cpu()
            log_probs = torch.log_softmax(logits, dim=-1)
            for row, index in enumerate(order[begin:begin + batch_size]):
                positions = encoded[index].first_token
                word_scores = log_probs[row, positions]
                path = best_path(logits[row, positions], self._start, self._trans, self.tagger.crf)
                chosen = word_scores[torch.arange(len(path)), torch.tensor(path, dtype=torch.long)] if path else word_scores[:0, 0]
                results[index] = TaggedSentence([self.tags[p] for p in path], chosen.exp().tolist())
        return results  # type: ignore[return-value]

    # -- text level ----------------------------------------------------------------------
    def predict(self, texts: str | Iterable[str], batch_size: int = 32, progress: bool = False):
        """Entities for one text (a list of `Entity`) or for many (a list of lists)."""
        if isinstance(texts, str):
            return self._predict_many([texts], batch_size, progress)[0]
        if isinstance(texts, (bytes, bytearray)) or texts is None or not isinstance(texts, Iterable):
            raise TypeError(f"predict() takes a str or a list of str, not {type(texts).__name__}")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"predict() takes a str or a list of str; item {i} is {type(text).__name__}")
        return self._predict_many(texts, batch_size, progress)

    def entity_spans(self, jobs: Sequence[tuple[str, Sequence[Sequence[WordRange]]]],
                     batch_size: int = 32) -> list[list[tuple[Span, float]]]:
        """For each (NFC text, sentences of word ranges): predicted spans with scores.
        The one path from words to spans, shared by predict() and evaluation."""
        windows: list[LabelledSentence] = []
        owners: list[int] = []
        for index, (text, sentences) in enumerate(jobs):
            for words in sentences:
                for window in self.fit(LabelledSentence(str(index), text, list(words), ["O"] * len(words))):
                    windows.append(window)
                    owners.append(index)
        results: list[list[tuple[Span, float]]] = [[] for _ in jobs]
        for window, tagged, owner in zip(windows, self.tag_sentences(windows, batch_size), owners):
            first_word = {start: k for k, (start, _) in enumerate(window.words)}
            last_word = {end: k for k, (_, end) in enumerate(window.words)}
            for span in tags_to_spans(window.words, tagged.tags, window.text):
                first, last = first_word[span.start], last_word[span.end]
                results[owner].append((span, sum(tagged.scores[first:last + 1]) / (last - first + 1)))
        return results

    def _predict_many(self, texts: list[str], batch_size: int, progress: bool) -> list[list[Entity]]:
        iterator = texts
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(texts, desc="segmenting", unit="text")
        normalized, jobs = [], []
        for text in iterator:
            norm = normalize_nfc(text)
            normalized.append(norm)
            jobs.append((norm.text, self.segmenter.segment(norm.text)))
        results: list[list[Entity]] = []
        for text, norm, spans in zip(texts, normalized, self.entity_spans(jobs, batch_size)):
            entities = []
            for span, score in spans:
                start, end = norm.original_index(span.start), norm.original_index(span.end)
                if start < end:
                    entities.append(Entity(text[start:end], span.label, start, end, round(score, 4)))
            entities.sort(key=lambda e: (e.start, e.end))
            results.append(entities)
        return results


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelLoadError(f"{path}: no such model directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"{path}: incomplete model directory, missing {', '.join(missing)} "
            f"(export a model with `python -m training.run`)"
        )


def load_model(path: str | os.PathLike, precision: str = "auto", num_threads: int | None = None,
               device: str | None = None) -> NerModel:
    """Load an exported model directory (no network). `precision`: auto, fp32 or bf16."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = Path(path)
    check_model_dir(path)
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path / SETTINGS_FILE}: unreadable: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path}: tokenizer files unreadable: {exc}") from exc
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            path, trust_remote_code=False, local_files_only=True, use_safetensors=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path / WEIGHTS_FILE}: weights unreadable or corrupted: {exc}") from exc
    tags = [model.config.id2label[i] for i in range(model.config.num_labels)]
    crf = _load_part(path, CRF_FILE, "the model uses a crf head", lambda f: LinearChainCRF.load(f, tags)) \
        if settings.get("head") == "crf" else None
    template = settings.get("word_feature_template", 1)
    if settings.get("word_features") and template != TEMPLATE_VERSION:
        raise ModelLoadError(
            f"{path / SETTINGS_FILE}: the word-feature table was trained on feature template {template}; this "
            f"version of the package computes template {TEMPLATE_VERSION}. Retrain the model (python -m training.run) "
            f"or load it with the package version that exported it")
    features = _load_part(path, FEATURES_FILE, "the model uses word features",
                          lambda f: WordFeatureEmissions.load(f, len(tags))) if settings.get("word_features") else None
    tagger = TokenTagger(model, tags, settings.get("head", "softmax"), crf=crf, word_features=features)
    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return NerModel(tagger, tokenizer, settings, path, choose_dtype(precision, torch_device), torch_device)


def _load_part(path: Path, name: str, why: str, load):
    if not (path / name).is_file():
        raise ModelLoadError(f"{path}: incomplete model directory, missing {name} ({why})")
    try:
        return load(path / name)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path / name}: unreadable or corrupted: {exc}") from exc


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
