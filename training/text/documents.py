"""Documents with character spans: the common currency of every reader and of predict().

Text is held in NFC. Vietnamese text often arrives decomposed (NFD: a base letter
followed by combining marks), and the same article must give the same spans either way,
so `normalize_nfc` returns the NFC text together with index maps in both directions.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Span:
    """A labelled character range `[start, end)` of a document's text."""

    start: int
    end: int
    label: str
    text: str = field(default="", compare=False)

    def overlaps(self, other: "Span") -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class Document:
    """One annotated text.

    `words` optionally carries a given word segmentation as sentences of `(start, end)`
    character ranges (CoNLL and JSON-lines corpora come pre-segmented); when it is None
    the segmenter decides.
    """

    id: str
    text: str
    spans: list[Span]
    source: str = ""
    words: list[list[tuple[int, int]]] | None = None


def split_lines(text: str) -> list[str]:
    """Lines as editors, `wc -l` and `sed -n Np` count them: ended by \n, \r\n or \r
    only (str.splitlines() also breaks at U+2028, U+0085, \f..., which JSON written with
    ensure_ascii=False keeps raw inside strings); a final line break ends the last line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True)
class NormalizedText:
    """NFC text plus index maps: `to_original[i]` is the original index of NFC index `i`
    (length `len(text) + 1`), `from_original[j]` the NFC index of original index `j`."""

    text: str
    to_original: list[int] | None  # None: identity (input was already NFC)
    from_original: list[int] | None

    def original_index(self, i: int) -> int:
        return i if self.to_original is None else self.to_original[i]

    def nfc_index(self, j: int) -> int:
        return j if self.from_original is None else self.from_original[j]


def _clusters(text: str) -> list[tuple[int, int]]:
    """Split `text` into ranges that NFC normalises independently of each other.

    A boundary goes before a starter (combining class 0, also after decomposition) that
    does not compose with, or reorder against, the cluster before it.
    """
    bounds = [0]
    for i in range(1, len(text)):
        char = text[i]
        if unicodedata.combining(unicodedata.normalize("NFD", char)[0]):
            continue  # a mark, or a character that decomposes into marks (U+0F73)
        # against the whole cluster so far, not just the character before: Hangul jamo
        # L+V+T compose although V+T alone do not
        current = text[bounds[-1]:i]
        if unicodedata.normalize("NFC", current + char) != (
            unicodedata.normalize("NFC", current) + unicodedata.normalize("NFC", char)
        ):
            continue
        bounds.append(i)
    bounds.append(len(text))
    return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1) if bounds[k] < bounds[k + 1]]


def normalize_nfc(text: str) -> NormalizedText:
    """NFC-normalise `text`, keeping the maps between NFC and original indices."""
    if unicodedata.is_normalized("NFC", text):
        return NormalizedText(text, None, None)
    pieces: list[str] = []
    to_original: list[int] = []
    from_original = [0] * (len(text) + 1)
    position = 0
    for start, end in _clusters(text):
        piece = unicodedata.normalize("NFC", text[start:end])
        same_length = len(piece) == end - start
        for k in range(len(piece)):
            # inside a cluster whose length NFC changes (U+0344 becomes two marks) an
            # index has no original counterpart: the part goes with the letter it
            # follows, so a word ending there keeps its whole last character
            to_original.append(start + k if same_length or k == 0 else end)
        for j in range(start, end):
            from_original[j] = position + (j - start if same_length else 0)
        pieces.append(piece)
        position += len(piece)
    to_original.append(len(text))
    from_original[len(text)] = position
    normalized = "".join(pieces)
    if normalized != unicodedata.normalize("NFC", text):
        # A composition crossed a cluster boundary; be coarse but never wrong.
        normalized = unicodedata.normalize("NFC", text)
        to_original = [0] * len(normalized) + [len(text)]
        from_original = [0] * len(text) + [len(normalized)]
    return NormalizedText(normalized, to_original, from_original)
