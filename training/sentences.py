"""Documents with character spans -> word-segmented, BIO-labelled sentences (and back).

Gold spans win over the segmenter: a word that crosses a span boundary (underthesea
joins `SOM ASEAN` into one word) is split there, and sentences that a span crosses are
merged, so no entity is ever shifted or dropped.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Sequence

from .bio import spans_to_tags, tags_to_spans
from .documents import Document, Span
from .segmentation import Segmenter, WordRange, word_surface

# PhoBERT: 258 positions = 256 tokens, of which <s> and </s> take two.
MAX_CONTENT_TOKENS = 254


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
    return [
        LabelledSentence(doc.id, doc.text, words, tags_within(words, doc.spans))
        for words in align_sentences(doc.text, raw, doc.spans)
    ]


def sentences_to_spans(sentences: Sequence[LabelledSentence]) -> list[Span]:
    """The inverse of `document_sentences` for one document's sentences."""
    spans: list[Span] = []
    for sentence in sentences:
        spans += tags_to_spans(sentence.words, sentence.tags, sentence.text)
    return spans


def split_to_fit(
    sentence: LabelledSentence,
    count_tokens: Callable[[str], int],
    max_tokens: int = MAX_CONTENT_TOKENS,
) -> list[LabelledSentence]:
    """Split a sentence into pieces of at most `max_tokens` sub-tokens.

    Cuts go at the last word boundary that fits and is not inside an entity, preferring
    one right after punctuation. A single word longer than the limit is kept alone (the
    encoder truncates its sub-tokens; its first sub-token still carries the label).
    """
    surfaces = sentence.surfaces()
    costs = [max(1, count_tokens(w)) for w in surfaces]
    if sum(costs) <= max_tokens:
        return [sentence]
    pieces: list[LabelledSentence] = []
    begin = 0
    n = len(costs)
    while begin < n:
        total, end = 0, begin
        while end < n and total + costs[end] <= max_tokens:
            total += costs[end]
            end += 1
        if end == n:
            cut = n
        else:
            end = max(end, begin + 1)
            # candidate cuts: positions c in (begin, end] where word c does not continue an entity
            candidates = [c for c in range(begin + 1, end + 1) if c == n or not sentence.tags[c].startswith("I-")]
            punctuated = [c for c in candidates if not surfaces[c - 1][-1:].isalnum()]
            cut = (punctuated or candidates or [end])[-1]
        pieces.append(
            LabelledSentence(sentence.doc_id, sentence.text, sentence.words[begin:cut], sentence.tags[begin:cut])
        )
        begin = cut
    return pieces
