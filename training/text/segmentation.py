"""Sentence splitting and Vietnamese word segmentation with exact character offsets.

PhoBERT expects word-segmented input (syllables of a word joined by `_`). A segmenter
returns, for a text, its sentences as lists of `(start, end)` word ranges into that very
text, so every later step can map back to characters. Segmenters are looked up by name
(`get_segmenter`), so another one (VnCoreNLP, say) can be registered without touching
training or inference.
"""

from __future__ import annotations

import inspect
import re
import threading
import unicodedata
from typing import Callable, Protocol

WordRange = tuple[int, int]

# A syllable-level fallback: runs of letters/digits (with inner . , - / + kept for
# dates, numbers, codes), or any single other non-space character.
_TOKEN = re.compile(r"\w+(?:[.,\-/+']\w+)*|[^\w\s]", re.UNICODE)
_LINE = re.compile(r"[^\n\r\u2028\u2029\x0b\x0c\x1c-\x1e\x85]+")


class Segmenter(Protocol):
    name: str

    def segment(self, text: str) -> list[list[WordRange]]:
        """Sentences of word ranges; words never contain a line break."""


def invisible(char: str) -> bool:
    """Zero-width, format and control characters: noise to the model, never an edge of a word."""
    return char.isspace() or unicodedata.category(char) in ("Cf", "Cc", "Cs", "Co", "Cn")


def word_surface(text: str, word: WordRange) -> str:
    """The PhoBERT form of a word: its syllables joined by `_`, invisible characters dropped."""
    visible = "".join(" " if c.isspace() else c for c in text[word[0]:word[1]] if not invisible(c) or c.isspace())
    return "_".join(visible.split())


def visible_words(text: str, sentences: list[list[WordRange]]) -> list[list[WordRange]]:
    """Trim invisible characters off word edges; drop words and sentences left empty."""
    result = []
    for sentence in sentences:
        words = []
        for start, end in sentence:
            while start < end and invisible(text[start]):
                start += 1
            while end > start and invisible(text[end - 1]):
                end -= 1
            if start < end:
                words.append((start, end))
        if words:
            result.append(words)
    return result


def segment_visible(segment: Callable[[str], list[list[WordRange]]], text: str) -> list[list[WordRange]]:
    """`segment` run on `text` without its invisible characters, offsets mapped back.

    Segmenters (underthesea's, the regex) break words at a zero-width joiner or a soft
    hyphen (`Vi\u200dệt`), which would cut an entity inside a word; taken out, they end
    up inside the word that surrounds them, and `word_surface` drops them from its form."""
    kept = [i for i, char in enumerate(text) if char.isspace() or not invisible(char)]
    if len(kept) == len(text):
        return segment(text)
    visible = "".join(text[i] for i in kept)
    return [[(kept[start], kept[end - 1] + 1) for start, end in words] for words in segment(visible)]


def _regex_words(text: str, start: int, end: int) -> list[WordRange]:
    return [(start + m.start(), start + m.end()) for m in _TOKEN.finditer(text[start:end])]


def align_pieces(text: str, pieces: list[str], start: int = 0, end: int | None = None,
                 lenient: bool = False) -> list[WordRange | None] | None:
    """Find `pieces` (whitespace-separated syllables inside each) in order in
    `text[start:end]`, skipping whitespace only. Strict (the segmenters): None unless
    every piece matches and nothing but whitespace is left over. Lenient (for a tagger
    that rewrites some words): a piece that does not match is None, the text before its
    first syllable may be skipped, and the search resumes after the last match."""
    end = len(text) if end is None else end
    words: list[WordRange | None] = []
    position = start
    for piece in pieces:
        found = _find_syllables(text, piece.split(), position, end, lenient)
        if found is None:
            if not lenient:
                return None
            words.append(None)
        elif found[0] is not None:
            words.append(found)
            position = found[1]
        elif lenient:
            words.append(None)
    if not lenient and text[position:end].strip():
        return None
    return words


def _find_syllables(text: str, syllables: list[str], position: int, end: int,
                    may_skip: bool) -> tuple[int | None, int] | None:
    first = None
    for syllable in syllables:
        while position < end and text[position].isspace():
            position += 1
        if not text.startswith(syllable, position) or position + len(syllable) > end:
            found = text.find(syllable, position, end) if may_skip and first is None else -1
            if found < 0:
                return None
            position = found
        if first is None:
            first = position
        position += len(syllable)
    return first, position


class RegexSegmenter:
    """Syllables as words, sentences at line breaks and sentence-final punctuation.
    Needs no model; used in tests and as the fallback when alignment fails."""

    name = "regex"

    def segment(self, text: str) -> list[list[WordRange]]:
        return segment_visible(self._segment, text)

    def _segment(self, text: str) -> list[list[WordRange]]:
        sentences: list[list[WordRange]] = []
        for line in _LINE.finditer(text):
            current: list[WordRange] = []
            for word in _regex_words(text, line.start(), line.end()):
                current.append(word)
                if text[word[0]:word[1]] in (".", "!", "?", "…"):
                    sentences.append(current)
                    current = []
            if current:
                sentences.append(current)
        return visible_words(text, sentences)


class UndertheseaSegmenter:
    """underthesea's CRF word segmenter (offline), with its output aligned back to the
    text. Token normalisation is off so underthesea never rewrites characters; a
    sentence it still cannot be aligned with falls back to syllables."""

    name = "underthesea"
    # underthesea loads its models lazily into module globals on the first call and is not
    # safe to enter from several threads (a first call racing another sees a half-loaded
    # tagger): one loaded NerModel is shared across threads, so its segmenter calls queue here
    _lock = threading.Lock()

    def __init__(self) -> None:
        # imported here, not at the top: the text layer's readers and tools must start
        # without loading underthesea, which only segmentation needs
        from underthesea import sent_tokenize, word_tokenize

        self._sent_tokenize = sent_tokenize
        self._word_tokenize = word_tokenize

    def _sentences(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        found = align_pieces(text, [" ".join(s.split()) for s in self._sent_tokenize(text[start:end])], start, end)
        if found is None:
            return [(start, end)]
        return found

    def segment(self, text: str) -> list[list[WordRange]]:
        with self._lock:
            return segment_visible(self._segment, text)

    def _segment(self, text: str) -> list[list[WordRange]]:
        sentences: list[list[WordRange]] = []
        for line in _LINE.finditer(text):
            if not text[line.start():line.end()].strip():
                continue
            for s_start, s_end in self._sentences(text, line.start(), line.end()):
                pieces = self._word_tokenize(text[s_start:s_end], use_token_normalize=False)
                words = align_pieces(text, pieces, s_start, s_end)
                if words is None:
                    words = _regex_words(text, s_start, s_end)
                if words:
                    sentences.append(words)
        return visible_words(text, sentences)


_REGISTRY: dict[str, Callable[..., Segmenter]] = {
    "underthesea": UndertheseaSegmenter,
    "regex": RegexSegmenter,
}


def segmenter_problem(name: str, settings: dict) -> str | None:
    """Why `get_segmenter(name, **settings)` would fail, without loading any model."""
    factory = _REGISTRY.get(name)
    if factory is None:
        return f"unknown segmenter {name!r}; known: {', '.join(sorted(_REGISTRY))}"
    try:
        inspect.signature(factory).bind(**settings)
    except TypeError:
        accepted = [p for p in inspect.signature(factory).parameters]
        return (f"segmenter {name!r} takes no setting(s) {', '.join(sorted(set(settings) - set(accepted)))}"
                f"; it accepts: {', '.join(accepted) or 'none'}")
    return None


def get_segmenter(name: str = "underthesea", **settings) -> Segmenter:
    problem = segmenter_problem(name, settings)
    if problem:
        raise ValueError(problem)
    return _REGISTRY[name](**settings)
