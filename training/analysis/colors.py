"""One colour per entity type, the same in every plot and HTML page."""

from __future__ import annotations

from typing import Sequence

from ..text.schema import DEFAULT_LABELS

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # the labeling config's colours


def type_colors(labels: Sequence[str]) -> dict[str, str]:
    """The corpus's five types in schema order, other label sets in sorted order, so a
    type keeps its colour whatever order a plot lists the types in."""
    ordered = list(DEFAULT_LABELS) if set(labels) <= set(DEFAULT_LABELS) else sorted(labels)
    return {label: PALETTE[ordered.index(label) % len(PALETTE)] for label in labels}
