"""Config -> documents -> train/dev/test splits (by document, deterministic from the seed)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..text.documents import Document
from ..text.schema import LabelSchema, read_labeling_config
from .config import DataConfig, SplitConfig
from .readers import Corpus, detect_format, read_corpus
from .validation import capped


@dataclass
class Splits:
    train: list[Document]
    dev: list[Document]
    test: list[Document]
    labels: tuple[str, ...]
    warnings: list[str] = field(default_factory=list)


def resolve_schema(data: DataConfig, path: str | Path, labels: Sequence[str] | None = None) -> LabelSchema | None:
    """The schema from the labeling config (Label Studio formats), replaced by explicit
    labels; None lets pre-segmented corpora take their label set from the data."""
    schema = None
    fmt = detect_format(path) if data.format == "auto" else data.format
    if fmt.startswith("labelstudio"):
        schema = read_labeling_config(data.labeling_config) if data.labeling_config else LabelSchema()
    explicit = list(labels or data.labels or [])
    if explicit:
        base = schema or LabelSchema()
        schema = LabelSchema(tuple(explicit), base.from_name, base.to_name, base.text_key)
    return schema


def load_split_documents(path: str | Path, data: DataConfig, labels: Sequence[str] | None = None) -> Corpus:
    """One file read as the run config's `data:` section says (evaluation data)."""
    return read_corpus(path, data.format, resolve_schema(data, path, labels), data.label_map, data.tag_column)


def _count(value: float, total: int) -> int:
    return int(value) if value >= 1 else int(round(value * total))


def split_documents(documents: list[Document], split: SplitConfig, seed: int) -> tuple[list, list, list]:
    order = list(documents)
    random.Random(seed).shuffle(order)
    n_test = _count(split.test, len(order))
    n_dev = _count(split.dev, len(order))
    if n_test + n_dev >= len(order):
        raise ValueError(
            f"data.split holds out {n_dev} dev + {n_test} test of {len(order)} documents; "
            f"at least one must remain for training")
    return order[n_test + n_dev:], order[n_test:n_test + n_dev], order[:n_test]


def check_label_map(data: DataConfig, schema: LabelSchema | None) -> None:
    """One error per label-map entry whose target the schema lacks, before any data is read."""
    if schema is None:
        return
    bad = [f"data.label_map.{source}: target {target!r} is not a label of the schema ({', '.join(schema.labels)})"
           for source, target in data.label_map.items() if target not in (None, "", "O", *schema.labels)]
    if bad:
        raise ValueError("\n  ".join(["invalid config:", *bad]))


def load_splits(data: DataConfig, seed: int, hold_out: bool = True) -> Splits:
    """The documents of `data`; with `hold_out`, dev and test documents not given as files
    are held out of the training ones by `data.split`."""
    schema = resolve_schema(data, data.train)
    check_label_map(data, schema)
    read = lambda path: read_corpus(path, data.format, schema, data.label_map, data.tag_column)  # noqa: E731
    train_corpus = read(data.train)
    warnings = list(train_corpus.warnings)
    if not train_corpus.documents:
        raise ValueError("\n  ".join([f"{data.train}: no usable document to train on", *capped(warnings, 20)]))
    dev = test = None
    if data.dev:
        dev_corpus = read(data.dev)
        dev, warnings = dev_corpus.documents, warnings + dev_corpus.warnings
    if data.test:
        test_corpus = read(data.test)
        test, warnings = test_corpus.documents, warnings + test_corpus.warnings
    train = train_corpus.documents
    if not hold_out:
        dev, test = dev or [], test or []
    elif dev is None or test is None:
        split = SplitConfig(dev=0 if dev is not None else data.split.dev, test=0 if test is not None else data.split.test)
        try:
            train, held_dev, held_test = split_documents(train, split, seed)
        except ValueError as exc:  # too few documents: the readers' warnings may say why
            raise ValueError("\n  ".join([str(exc), *capped(warnings, 20)])) from None
        dev = dev if dev is not None else held_dev
        test = test if test is not None else held_test
    if schema is not None:
        labels = schema.labels
    else:
        seen: dict[str, None] = {}
        for doc in [*train, *dev, *test]:
            for span in doc.spans:
                seen.setdefault(span.label, None)
        labels = tuple(seen)
    if not labels:
        raise ValueError(f"{data.train}: no entity labels found in the data or the config")
    if not any(doc.spans for doc in train):  # a warning: a retraining job may see this, and its gate judges
        warnings.append(f"{data.train}: the training documents hold no entity span: the model can only learn to "
                        "find nothing")
    trained_on = {doc.text for doc in train}
    for name, held in (("dev", dev), ("test", test)):
        shared = sum(doc.text in trained_on for doc in held)
        if shared:
            warnings.append(f"{shared} of {len(held)} {name} document(s) also among the training documents (same "
                            f"text): their scores measure memory, not generalisation")
    return Splits(train, dev, test, labels, warnings)


def leave_one_out(documents: list[Document], seed: int) -> list[tuple[list, list, list]]:
    """Per document: it is the test set, the next one (in seeded order) the dev set."""
    order = list(documents)
    random.Random(seed).shuffle(order)
    folds = []
    for i, test_doc in enumerate(order):
        dev_doc = order[(i + 1) % len(order)]
        train = [d for d in order if d is not test_doc and d is not dev_doc]
        folds.append((train, [dev_doc], [test_doc]))
    return folds


def data_fingerprint(paths: Sequence[str | None]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()
