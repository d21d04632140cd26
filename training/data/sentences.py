"""Documents with character spans -> word-segmented, BIO-labelled sentences.

Gold spans win over the segmenter: a word that crosses a span boundary (underthesea
joins `SOM ASEAN` into one word) is split there, and sentences that a span crosses are
merged, so no entity is ever shifted or dropped.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

from ..text.bio import spans_to_tags
from ..text.documents import Document, Span
from ..text.segmentation import Segmenter, WordRange, word_surface


@dataclass
class LabelledSentence:
    """A sentence of a document: word ranges into `text`, one IOB2 tag per word."""

    doc_id: str
    text: str
    words: list[WordRange]
    tags: list[str]

    def surfaces(self) -> list[str]:
        return [word_surface(self.text, word) for word in self.words]


def split_at_boundaries(words: Sequence[WordRange], cuts: set[int], text: str) -> list[WordRange]:
    """Split words at the character positions in `cuts`, dropping whitespace-only parts."""
    result: list[WordRange] = []
    for start, end in words:
        points = [start] + sorted(c for c in cuts if start < c < end) + [end]
        for a, b in zip(points, points[1:]):
            piece = text[a:b]
            if piece.strip():
                # trim whitespace left at a cut so a word never starts or ends with it
                a += len(piece) - len(piece.lstrip())
                b -= len(piece) - len(piece.rstrip())
                result.append((a, b))
    return result


def _merge_crossed(sentences: list[list[WordRange]], spans: Sequence[Span]) -> list[list[WordRange]]:
    """Merge consecutive sentences whenever a span starts in one and ends in a later one
    (one sweep: O((sentences + spans) log sentences))."""
    if not sentences:
        return []
    starts = [sentence[0][0] for sentence in sentences]
    joined = [False] * len(sentences)  # joined[i]: sentence i continues sentence i-1
    for span in spans:
        first = max(0, bisect.bisect_right(starts, span.start) - 1)
        last = max(0, bisect.bisect_left(starts, span.end) - 1)
        for i in range(first + 1, last + 1):
            joined[i] = True
    merged: list[list[WordRange]] = []
    for sentence, join in zip(sentences, joined):
        if join and merged:
            merged[-1] = merged[-1] + sentence
        else:
            merged.append(list(sentence))
    return merged


def align_sentences(text: str, raw: Sequence[Sequence[WordRange]], spans: Sequence[Span]) -> list[list[WordRange]]:
    """Split words at every span boundary and merge sentences that a span crosses, so
    that every span covers whole words of one sentence."""
    cuts = {s.start for s in spans} | {s.end for s in spans}
    sentences = [split_at_boundaries(words, cuts, text) for words in raw]
    return _merge_crossed([s for s in sentences if s], spans)


def tags_within(words: Sequence[WordRange], spans: Sequence[Span]) -> list[str]:
    """IOB2 tags of one aligned sentence from the spans that fall inside it."""
    lo, hi = words[0][0], words[-1][1]
    return spans_to_tags(words, [s for s in spans if s.start >= lo and s.end <= hi])


def document_sentences(doc: Document, segmenter: Segmenter) -> list[LabelledSentence]:
    """Segment a document (or use its given words) and tag each word from the gold spans."""
    raw = doc.words if doc.words is not None else segmenter.segment(doc.text)
    try:
        return [
            LabelledSentence(doc.id, doc.text, words, tags_within(words, doc.spans))
            for words in align_sentences(doc.text, raw, doc.spans)
        ]
    except ValueError as exc:  # a span the readers let through that no word boundary fits
        raise ValueError(f"{doc.source or 'document'}: task {doc.id}: {exc}") from exc
