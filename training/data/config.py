"""Where a run's documents come from and how they are split (the `data:` section of a
run config). Each field's check sits beside it (`metadata["check"]`); the run config's
loader applies them and names the key of any value that fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class SplitConfig:
    """How documents are split when `data.dev`/`data.test` are not given: a count of
    documents (>= 1) or a fraction (< 1), chosen deterministically from the seed."""

    dev: float = field(default=1, metadata={"check": lambda v: v >= 0})
    test: float = field(default=1, metadata={"check": lambda v: v >= 0})


@dataclass
class DataConfig:
    train: str = "annotations/gold_export.json"
    dev: str | None = None
    test: str | None = None
    format: Literal["auto", "labelstudio", "labelstudio-min", "conll", "jsonl"] = "auto"
    labeling_config: str | None = "annotations/labeling_config.xml"
    labels: list[str] | None = None  # overrides the labeling config / the data
    label_map: dict[str, str | None] = field(default_factory=dict)
    tag_column: int = -1  # CoNLL column holding the tag
    split: SplitConfig = field(default_factory=SplitConfig)
