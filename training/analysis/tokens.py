"""Sentence lengths in PhoBERT tokens, measured against the model's 256-token limit
with the tokenizer training would use (or, offline, the tiny backbone's)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from transformers import AutoTokenizer, PhobertTokenizer

from ..common.tables import Table
from ..data.readers import Corpus
from ..data.sentences import document_sentences
from ..model.encoding import MAX_CONTENT_TOKENS, WordPieces
from ..train.config import TinyBackboneConfig
from ..train.tiny_backbone import build_tokenizer_files
from .corpus import document_name

PHOBERT = "vinai/phobert-base-v2"
PHOBERT_MAX_TOKENS = MAX_CONTENT_TOKENS + 2  # <s> and </s> around the content
TINY_TOKENIZER = f"tiny offline PhoBERT-style BPE ({PHOBERT} not in the local cache)"


def tiny_tokenizer(corpus: Corpus, segmenter) -> PhobertTokenizer:
    """The tiny backbone's PhoBERT-style BPE tokenizer, learned from `corpus` as training
    learns it."""
    words = [w for doc in corpus.documents for s in document_sentences(doc, segmenter) for w in s.surfaces()]
    with tempfile.TemporaryDirectory(prefix="tiny-tokenizer-") as tmp:  # read at init: removable at once
        build_tokenizer_files(words, Path(tmp), TinyBackboneConfig().vocab_size)
        return PhobertTokenizer(str(Path(tmp) / "vocab.txt"), str(Path(tmp) / "bpe.codes"))


def load_tokenizer(name_or_path: str | os.PathLike | None = None, corpus: Corpus | None = None, segmenter=None):
    """(tokenizer, description). `name_or_path` (a model directory or a hub id in the
    local cache) when given, else `vinai/phobert-base-v2` from the local cache, else the
    tiny backbone's tokenizer learned from `corpus` (offline, as training does). The
    description says which one it is: counts depend on it."""
    if name_or_path is not None:
        return AutoTokenizer.from_pretrained(str(name_or_path), local_files_only=True), str(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(PHOBERT, local_files_only=True), PHOBERT
    except Exception:  # noqa: BLE001 - not available offline: build the tiny one
        if corpus is None:
            raise ValueError("no PhoBERT tokenizer available offline; pass a corpus to build the tiny one") from None
    return tiny_tokenizer(corpus, segmenter), TINY_TOKENIZER


def sentence_token_lengths(corpus: Corpus, segmenter, tokenizer) -> list[tuple[str, int]]:
    """(document, length in PhoBERT tokens incl. <s> and </s>) for every sentence as
    training builds it (gold-aligned, before splitting into 256-token windows)."""
    pieces = WordPieces(tokenizer)
    return [(document_name(doc), sum(pieces.count(w) for w in s.surfaces()) + 2)
            for doc in corpus.documents for s in document_sentences(doc, segmenter)]


def token_length_table(lengths: list[tuple[str, int]], limit: int = PHOBERT_MAX_TOKENS) -> Table:
    values = sorted(n for _, n in lengths)
    over = sum(1 for n in values if n > limit)
    rows = [[len(values), values[0], values[len(values) // 2], round(sum(values) / len(values), 1),
             values[-1], over]] if values else []
    return Table(["sentences", "min", "median", "mean", "max", f"> {limit}"], rows,
                 "Sentence length in PhoBERT tokens (incl. <s> </s>)")
