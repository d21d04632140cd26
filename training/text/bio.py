"""Character spans <-> word-level IOB2 tags: the one implementation training, evaluation
and predict() share, so the paths cannot drift apart.

Repair rule for invalid sequences (documented in the README): an `I-X` that does not
continue an entity of type X (it follows `O`, the sentence start, or another type)
starts a new entity of type X, as if it were `B-X`. Nothing is thrown away.
"""

from __future__ import annotations

from typing import Sequence

from .documents import Span

WordRange = tuple[int, int]


def split_tag(tag: str) -> tuple[str, str]:
    """`"B-ORG"` -> `("B", "ORG")`; `"O"` -> `("O", "")`."""
    if tag == "O":
        return "O", ""
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not label:
        raise ValueError(f"not an IOB2 tag: {tag!r}")
    return prefix, label


def repair_tags(tags: Sequence[str]) -> list[str]:
    """Apply the repair rule above, so the result is valid strict IOB2."""
    repaired: list[str] = []
    previous = ""
    for tag in tags:
        prefix, label = split_tag(tag)
        if prefix == "I" and previous != label:
            tag = f"B-{label}"
        repaired.append(tag)
        previous = label
    return repaired


def is_valid_iob2(tags: Sequence[str]) -> bool:
    return list(tags) == repair_tags(tags)


def spans_to_tags(words: Sequence[WordRange], spans: Sequence[Span]) -> list[str]:
    """Tag each word by the span that contains it.

    A span must start at a word start and end at a word end; the sentence builder
    guarantees this by splitting words at span boundaries. A violation is a bug, so it
    raises rather than shifting the entity.
    """
    tags = ["O"] * len(words)
    starts = {start: i for i, (start, _) in enumerate(words)}
    ends = {end: i for i, (_, end) in enumerate(words)}
    for span in spans:
        first, last = starts.get(span.start), ends.get(span.end)
        if first is None or last is None or last < first:
            raise ValueError(f"span {span} does not align with word boundaries")
        tags[first] = f"B-{span.label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{span.label}"
    return tags


def tags_to_spans(words: Sequence[WordRange], tags: Sequence[str], text: str = "") -> list[Span]:
    """Decode (repaired) tags into spans from the first word's start to the last's end."""
    spans: list[Span] = []
    current: tuple[int, int, str] | None = None
    for (start, end), tag in zip(words, repair_tags(tags)):
        prefix, label = split_tag(tag)
        if prefix == "I" and current is not None:
            current = (current[0], end, label)
            continue
        if current is not None:
            spans.append(Span(current[0], current[1], current[2], text[current[0]:current[1]]))
            current = None
        if prefix == "B":
            current = (start, end, label)
    if current is not None:
        spans.append(Span(current[0], current[1], current[2], text[current[0]:current[1]]))
    return spans
