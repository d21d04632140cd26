"""Where a run's documents come from and how they are split (the `data:` section of a
run config). Each field's check sits beside it (`metadata["check"]`); the run config's
loader applies them and names the key of any value that fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


def _share(value: float) -> bool | str:
    if value < 0:
        return False
    return value < 1 or value.is_integer() or f"{value} is neither a fraction below 1 nor a whole count of documents"


def _labels(labels: list[str]) -> bool | str:
    if not labels:
        return "an empty list; leave it out (null) to take the labels from the labeling config or the data"
    repeated = next((label for label in labels if labels.count(label) > 1), None)
    if repeated is not None:
        return f"label {repeated!r} is listed twice"
    return next((f"label {label!r} is not a plain name" for label in labels
                 if not label or label != label.strip() or not label.isprintable() or label == "O"), True)


@dataclass
class SplitConfig:
    """How documents are split when `data.dev`/`data.test` are not given: a count of
    documents (>= 1) or a fraction (< 1), chosen deterministically from the seed."""

    dev: float = field(default=1, metadata={"check": lambda v: _share(v)})
    test: float = field(default=1, metadata={"check": lambda v: _share(v)})


@dataclass
class DataConfig:
    train: str = "annotations/gold_export.json"
    dev: str | None = None
    test: str | None = None
    format: Literal["auto", "labelstudio", "labelstudio-min", "conll", "jsonl"] = "auto"
    labeling_config: str | None = "annotations/labeling_config.xml"
    labels: list[str] | None = field(default=None, metadata={"check": _labels})  # overrides the labeling config / the data
    label_map: dict[str, str | None] = field(default_factory=dict)
    tag_column: int | None = None  # CoNLL column of the tags (0-based); None: found (data/tagged.py)
    split: SplitConfig = field(default_factory=SplitConfig)
