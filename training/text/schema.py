"""The label schema: which entity types exist and where Label Studio puts them.

The label set is never hard-coded: it comes from the labeling config (or the data).
The five types of the ASEAN news corpus are only its default.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LABELS = ("ORG", "PER", "LOC", "EVENT", "DATE")


@dataclass(frozen=True)
class LabelSchema:
    labels: tuple[str, ...] = DEFAULT_LABELS
    from_name: str = "label"
    to_name: str = "text"
    text_key: str = "text"

    def bio_tags(self) -> list[str]:
        """`O` first, then `B-`/`I-` per type, in schema order (stable label ids)."""
        tags = ["O"]
        for label in self.labels:
            tags += [f"B-{label}", f"I-{label}"]
        return tags


class LabelConfigError(ValueError):
    pass


def read_labeling_config(path: str | Path) -> LabelSchema:
    """Read a Label Studio labeling config file holding one `<Labels>` over one `<Text>`."""
    path = Path(path)
    try:
        xml = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelConfigError(f"{path}: cannot read labeling config: {exc}") from exc
    return parse_labeling_config(xml, str(path))


def parse_labeling_config(xml: str, where: str = "labeling config") -> LabelSchema:
    """A labeling config given as text (a Label Studio project's); errors start with `where`."""
    path = where
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LabelConfigError(f"{path}: labeling config is not valid XML: {exc}") from exc
    labels_tags = root.findall(".//Labels")
    text_tags = root.findall(".//Text")
    if len(labels_tags) != 1 or len(text_tags) != 1:
        raise LabelConfigError(
            f"{path}: expected exactly one <Labels> and one <Text>, found "
            f"{len(labels_tags)} and {len(text_tags)}"
        )
    labels_tag, text_tag = labels_tags[0], text_tags[0]
    values = tuple(tag.get("value", "") for tag in labels_tag.findall("Label"))
    if not values or any(not value for value in values):
        raise LabelConfigError(f"{path}: <Labels name={labels_tag.get('name')!r}> has no usable <Label value=...>")
    if len(set(values)) != len(values):
        raise LabelConfigError(f"{path}: duplicate label values in {values}")
    text_value = text_tag.get("value", "$text")
    return LabelSchema(
        labels=values,
        from_name=labels_tag.get("name", "label"),
        to_name=labels_tag.get("toName", text_tag.get("name", "text")),
        text_key=text_value.lstrip("$"),
    )
