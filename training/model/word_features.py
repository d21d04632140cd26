"""Sparse word features as a second source of emissions, beside the transformer's.

A transformer trained from scratch on a few thousand sentences learns word identity,
affixes and capitalisation slowly, while a feature CRF is handed them as features from
the first sentence on. So the offline recipe adds what the CRF sees to
the model's word emissions: for each word, the hashed strings of its identity, lower
case, shape, word classes (title case, upper case, digits, punctuation), syllables,
affixes, its ±2 neighbours, the words 3 away and the first/last syllables of the ±1
neighbours (about 40 per word) index a table
of per-label weights that is summed onto the encoder's logits at the word's first
sub-token. It is fit first as a feature CRF (train/feature_crf.py), then trained jointly with
the encoder, decoded by the same head, and saved as `word_features.safetensors`; torch
only, so the inference module loads it.

Feature strings are hashed with CRC-32 (stable across processes, unlike `hash()`) into
`buckets` rows; id 0 is padding.
"""

from __future__ import annotations

import functools
import unicodedata
import zlib
from typing import Sequence

import torch
from torch import nn

# the feature strings a saved table was trained on: bump on any change to feature_strings(),
# so that load_model() refuses a table whose rows would now mean other features
TEMPLATE_VERSION = 3
CONTEXT = (-2, -1, 1, 2)
FAR = (-3, 3)  # lower case only (template 3): context beyond the ±2 window, in its most general form
NEAR = (-1, 1)  # first and last syllable (template 3)
FLAGS = ("title", "upper", "digit", "hasdigit", "punct")
CONTEXT_FLAGS = FLAGS[:3]
# bias, own, syllables (<= 4), flags, context (word/lower/shape + flags), far words, near
# syllables, bigrams, sentence edge
MAX_FEATURES = (1 + 12 + 4 + len(FLAGS) + len(CONTEXT) * (3 + len(CONTEXT_FLAGS)) + len(FAR) + 2 * len(NEAR)
                + 2 + 2)


# news repeats its words: the per-word parts are cached (pure functions of the word)
@functools.lru_cache(maxsize=1 << 16)
def fine_shape(word: str) -> str:
    """Character classes with repeats collapsed: `Hà_Nội` -> `Xx_Xx`, `07/10/2024` -> `d/d/d`."""
    out: list[str] = []
    for char in word:
        if char.isdigit():
            code = "d"
        elif char.isalpha():
            code = "X" if char.isupper() else "x"
        elif char == "_" or unicodedata.category(char).startswith("P") or char in "+-/%.":
            code = char
        else:
            code = "#"
        if not out or out[-1] != code:
            out.append(code)
    return "".join(out)


@functools.lru_cache(maxsize=1 << 16)
def _flags(word: str) -> tuple[str, ...]:
    """Binary word classes: a name never seen in training still shares them with the
    names that were, so a feature CRF generalises through these to unseen names."""
    syllables = [s for s in word.split("_") if s]
    found = {
        "title": bool(syllables) and all(s[:1].isupper() for s in syllables),
        "upper": word.isupper(),
        "digit": word.replace("_", "").isdigit(),
        "hasdigit": any(c.isdigit() for c in word),
        "punct": all(not c.isalnum() for c in word),
    }
    return tuple(name for name in FLAGS if found[name])


@functools.lru_cache(maxsize=1 << 16)
def _own(word: str) -> tuple[str, ...]:
    """Features of the word itself (one string each, named by template)."""
    lower = word.lower()
    syllables = lower.split("_")
    own = [f"w={word}", f"l={lower}", f"s={fine_shape(word)}", f"n={min(len(syllables), 5)}",
           f"fs={syllables[0]}", f"ls={syllables[-1]}"]
    own += [f"p{k}={lower[:k]}" for k in (1, 2, 3)] + [f"x{k}={lower[-k:]}" for k in (1, 2, 3)]
    own += [f"y={syllable}" for syllable in syllables[:4]]
    return (*own, *(f"f={flag}" for flag in _flags(word)))


def feature_strings(words: Sequence[str]) -> list[list[str]]:
    """Per word: its own features and word classes, its ±2 neighbours' word/lower/shape
    and classes, the lower case of the words 3 away, the first and last syllables of the
    ±1 neighbours, the two word bigrams around it, sentence-edge marks and a bias."""
    lowers = [w.lower() for w in words]
    padded = ["<s>", "<s>", *words, "</s>", "</s>"]
    n = len(words)
    result = []
    for i, word in enumerate(words):
        feats = ["bias", *_own(word)]
        for offset in CONTEXT:
            other = padded[i + 2 + offset]
            feats += [f"{offset}w={other}", f"{offset}l={other.lower()}", f"{offset}s={fine_shape(other)}"]
            if 0 <= i + offset < n:
                feats += [f"{offset}f={flag}" for flag in _flags(other) if flag in CONTEXT_FLAGS]
        feats += [f"{offset}l={lowers[i + offset] if 0 <= i + offset < n else '<pad>'}" for offset in FAR]
        for offset in NEAR:
            if 0 <= i + offset < n:
                syllables = lowers[i + offset].split("_")
                feats += [f"{offset}fs={syllables[0]}", f"{offset}ls={syllables[-1]}"]
        feats.append(f"-1b={lowers[i - 1] if i else '<s>'}|{lowers[i]}")
        feats.append(f"+1b={lowers[i]}|{lowers[i + 1] if i + 1 < n else '</s>'}")
        feats += ["first"] * (i == 0) + ["last"] * (i == n - 1)
        result.append(feats)
    return result


def hashed_features(words: Sequence[str], buckets: int) -> list[list[int]]:
    """Per word, feature ids in [1, buckets) (0 is padding)."""
    return [[zlib.crc32(f.encode("utf-8", "surrogatepass")) % (buckets - 1) + 1 for f in feats]
            for feats in feature_strings(words)]


class WordFeatureEmissions(nn.Module):
    """Per-label weights of hashed features, summed per position: ids [B, T, K] -> [B, T, labels].
    Starts at zero; the warm start (train/feature_crf.py) fits it before the encoder trains."""

    def __init__(self, buckets: int, num_labels: int):
        super().__init__()
        self.buckets = buckets
        self.weights = nn.Embedding(buckets, num_labels, padding_idx=0)
        nn.init.zeros_(self.weights.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weights(ids).sum(dim=-2)
