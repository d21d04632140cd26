"""Plots, small tables and HTML for the notebooks, and `python -m training.report`.

Every function here returns a matplotlib `Figure` (built without pyplot, so nothing
pops up and nothing leaks), a `Table` (plain text when printed, an HTML table in a
notebook) or an HTML string; the notebooks in notebooks/ only call them.

    python -m training.report --figures DIR [--model MODEL_DIR]

writes every plot as a PNG into DIR (plus worst_errors.html). Without `--model` it
first trains the tiny offline model (about 10 s) into a temporary directory.

Two data sources:
- the corpus (`corpus_*`, `fig_entity_counts`, ...): a Label Studio export read
  through `training.data.readers`, segmented as training segments it;
- a model (`evaluate_model`, `fig_per_type_f1`, ...): an exported model directory,
  evaluated on its own test split (rebuilt from the config in its metadata.json)
  exactly as `training.evaluate` does, on the word grid shared by gold and prediction.
"""

from __future__ import annotations

import argparse
import atexit
import html
import json
import os
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .text.bio import tags_to_spans
from .text.documents import Document, Span
from .data.readers import Corpus, read_corpus
from .text.schema import LabelSchema, read_labeling_config

PHOBERT_MAX_TOKENS = 256  # <s> + 254 content tokens + </s>
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # the labeling config's colours


# -- locations ---------------------------------------------------------------------------
def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder, upwards from `start` (default: the
    current directory, then this package's location), holding `training/` and
    `annotations/`."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "training").is_dir() and (folder / "annotations").is_dir():
                return folder
    raise FileNotFoundError(f"no repository root (a folder with training/ and annotations/) above {candidates[0]}")


def _resolve(path: str | os.PathLike | None) -> Path | None:
    """A data path as given if it exists, else relative to the repository root."""
    if path is None:
        return None
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    try:
        return repo_root() / path
    except FileNotFoundError:
        return path


# -- tables ------------------------------------------------------------------------------
@dataclass
class Table:
    """A small table: `print(table)` gives aligned plain text, a notebook shows HTML."""

    header: list[str]
    rows: list[list]
    title: str = ""

    def _cells(self) -> list[list[str]]:
        def fmt(value) -> str:
            return f"{value:.3f}" if isinstance(value, float) else str(value)
        return [[fmt(v) for v in row] for row in self.rows]

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
                  for i, h in enumerate(self.header)]
        numeric = [all(isinstance(r[i], (int, float)) for r in self.rows) and bool(self.rows)
                   for i in range(len(self.header))]
        def line(row):
            return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()
        out = [self.title] if self.title else []
        out += [line([str(h) for h in self.header]), "-" * sum(w + 2 for w in widths)]
        out += [line(r) for r in cells] or ["(none)"]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self._cells())
        if not self.rows:
            body = f'<tr><td colspan="{len(self.header)}"><i>(none)</i></td></tr>'
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return str(self)


# -- corpus ------------------------------------------------------------------------------
DEFAULT_EXPORT = "annotations/gold_export.json"
DEFAULT_LABELING_CONFIG = "annotations/labeling_config.xml"


def load_schema(labeling_config: str | os.PathLike = DEFAULT_LABELING_CONFIG) -> LabelSchema:
    return read_labeling_config(_resolve(labeling_config))


def load_corpus(path: str | os.PathLike = DEFAULT_EXPORT, schema: LabelSchema | None = None,
                fmt: str = "auto") -> Corpus:
    """Read an export through the project's readers (validated, NFC)."""
    if schema is None and str(path).endswith(".json"):
        schema = load_schema()
    return read_corpus(_resolve(path), fmt, schema)


def read_flawed_copy(path: str | os.PathLike = DEFAULT_EXPORT, schema: LabelSchema | None = None) -> tuple[Corpus, str]:
    """Read a copy of a Label Studio export in which one span is widened over the
    whitespace beside it, to show the readers' warnings at work. The copy lives in a
    temporary file that is removed at once. Returns (corpus, what was changed)."""
    source = _resolve(path)
    tasks = json.loads(source.read_text(encoding="utf-8"))
    described = None
    for task in tasks:
        text = task["data"]["text"]
        for annotation in task.get("annotations") or []:
            for result in annotation.get("result") or []:
                value = result.get("value") or {}
                end = value.get("end")
                if isinstance(end, int) and end < len(text) and text[end] == " ":
                    value["end"] = end + 1
                    value["text"] = text[value["start"]:end + 1]
                    described = (f"task {task.get('id')}: span {value['text']!r} ({value['labels'][0]}) "
                                 f"now ends with a space, [{value['start']}:{end}] -> [{value['start']}:{end + 1}]")
                    break
            if described:
                break
        if described:
            break
    if described is None:
        raise ValueError(f"{source}: no span followed by a space to widen")
    with tempfile.TemporaryDirectory(prefix="flawed-export-") as tmp:
        copy = Path(tmp) / f"flawed_{source.name}"
        copy.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        corpus = read_corpus(copy, "labelstudio", schema or load_schema())
    return corpus, described


def document_name(doc: Document) -> str:
    return doc.source or doc.id


def corpus_labels(corpus: Corpus, schema: LabelSchema | None = None) -> tuple[str, ...]:
    return tuple(schema.labels) if schema is not None else corpus.labels


def counts_table(corpus: Corpus, labels: Sequence[str]) -> Table:
    """Entities per article (rows) and type (columns), with totals."""
    rows, totals = [], Counter()
    for doc in corpus.documents:
        counts = Counter(span.label for span in doc.spans)
        totals.update(counts)
        rows.append([document_name(doc), *(counts[l] for l in labels), sum(counts.values())])
    rows.append(["TOTAL", *(totals[l] for l in labels), sum(totals.values())])
    return Table(["document", *labels, "total"], rows, "Entities per article and type")


def warnings_table(corpus: Corpus, title: str = "Validation warnings") -> Table:
    return Table(["#", "warning"], [[i + 1, w] for i, w in enumerate(corpus.warnings)], title)


def _colors(labels: Sequence[str]) -> dict[str, str]:
    """One colour per type in every plot: the corpus's five types in schema order, other
    label sets in sorted order, whatever order a plot lists them in."""
    from .text.schema import DEFAULT_LABELS

    ordered = list(DEFAULT_LABELS) if set(labels) <= set(DEFAULT_LABELS) else sorted(labels)
    return {label: PALETTE[ordered.index(label) % len(PALETTE)] for label in labels}


def _figure(width: float, height: float, **kwargs):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", **kwargs)



def fig_entity_counts(corpus: Corpus, labels: Sequence[str]):
    """Two panels: total entities per type; entities per article stacked by type."""
    colors = _colors(labels)
    totals = Counter(span.label for doc in corpus.documents for span in doc.spans)
    fig = _figure(11, 4.2)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    bars = left.bar(list(labels), [totals[l] for l in labels], color=[colors[l] for l in labels])
    left.bar_label(bars, padding=2, fontsize=9)
    left.set_title(f"Entities per type ({sum(totals.values())} in {len(corpus.documents)} articles)")
    left.set_ylabel("entities")
    left.margins(y=0.12)
    names = [document_name(d) for d in corpus.documents]
    bottom = [0] * len(names)
    for label in labels:
        values = [sum(1 for s in d.spans if s.label == label) for d in corpus.documents]
        right.barh(names, values, left=bottom, color=colors[label], label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    for y, total in enumerate(bottom):
        right.text(total + 0.5, y, str(total), va="center", fontsize=9)
    right.invert_yaxis()
    right.set_xlabel("entities")
    right.set_title("Entities per article, by type")
    right.legend(ncols=len(labels), loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False, fontsize=9)
    right.margins(x=0.1)
    return fig


def _span_word_lengths(doc: Document, segmenter) -> list[tuple[Span, int]]:
    """Each gold span with its length in words (segmenter words, split at span edges
    exactly as training splits them)."""
    from .data.sentences import document_sentences

    lengths = []
    for sentence in document_sentences(doc, segmenter):
        first = {start: k for k, (start, _) in enumerate(sentence.words)}
        last = {end: k for k, (_, end) in enumerate(sentence.words)}
        lo, hi = sentence.words[0][0], sentence.words[-1][1]
        for span in doc.spans:
            if lo <= span.start and span.end <= hi:
                lengths.append((span, last[span.end] - first[span.start] + 1))
    return lengths


def span_lengths(corpus: Corpus, segmenter) -> dict[str, list[int]]:
    """Per type, the length in words of every span."""
    result: dict[str, list[int]] = defaultdict(list)
    for doc in corpus.documents:
        for span, length in _span_word_lengths(doc, segmenter):
            result[span.label].append(length)
    return dict(result)


def span_length_table(lengths: dict[str, list[int]], labels: Sequence[str]) -> Table:
    rows = []
    for label in labels:
        values = sorted(lengths.get(label, []))
        if values:
            rows.append([label, len(values), min(values), values[len(values) // 2],
                         round(sum(values) / len(values), 2), max(values)])
    return Table(["type", "spans", "min", "median", "mean", "max"], rows, "Span length in words")


def fig_span_lengths(lengths: dict[str, list[int]], labels: Sequence[str]):
    """One small histogram per type of span length in words."""
    colors = _colors(labels)
    longest = max((max(v) for v in lengths.values() if v), default=1)
    fig = _figure(2.3 * len(labels) + 0.6, 3.2)
    axes = fig.subplots(1, len(labels), sharey=True, squeeze=False)[0]
    for ax, label in zip(axes, labels):
        counts = Counter(lengths.get(label, []))
        xs = list(range(1, longest + 1))
        bars = ax.bar(xs, [counts[x] for x in xs], color=colors[label])
        ax.bar_label(bars, labels=[str(counts[x]) if counts[x] else "" for x in xs], padding=1, fontsize=8)
        ax.set_title(f"{label} (n={sum(counts.values())})")
        ax.set_xticks(xs if longest <= 8 else [x for x in xs if x == 1 or x % 2 == 0])
        ax.set_xlabel("words")
    axes[0].set_ylabel("spans")
    axes[0].margins(y=0.12)
    fig.suptitle("Span length in words (underthesea segmentation, split at span edges)")
    return fig


def top_surface_forms(corpus: Corpus, labels: Sequence[str], n: int = 5) -> dict[str, list[tuple[str, int]]]:
    counts: dict[str, Counter] = {label: Counter() for label in labels}
    for doc in corpus.documents:
        for span in doc.spans:
            counts.setdefault(span.label, Counter())[span.text] += 1
    return {label: counts[label].most_common(n) for label in labels}


def surface_forms_table(forms: dict[str, list[tuple[str, int]]]) -> Table:
    rows = [[label, rank + 1, text, count] for label, items in forms.items() for rank, (text, count) in enumerate(items)]
    return Table(["type", "rank", "surface form", "count"], rows, "Most frequent surface forms per type")


def _shorten(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def fig_surface_forms(forms: dict[str, list[tuple[str, int]]]):
    """Per type, a horizontal bar chart of its most frequent surface forms."""
    labels = list(forms)
    colors = _colors(labels)
    fig = _figure(12, 1.0 + 1.6 * ((len(labels) + 1) // 2) * 1.3)
    axes = fig.subplots((len(labels) + 1) // 2, 2, squeeze=False).ravel()
    for ax, label in zip(axes, labels):
        items = forms[label]
        bars = ax.barh([_shorten(t) for t, _ in items], [c for _, c in items], color=colors[label])
        ax.bar_label(bars, padding=2, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10, loc="left")
        ax.tick_params(axis="y", labelsize=9)
        ax.margins(x=0.12)
    for ax in axes[len(labels):]:
        ax.set_visible(False)
    fig.suptitle("Most frequent surface forms per type (count of mentions)")
    return fig


# -- sentence lengths in PhoBERT tokens --------------------------------------------------
def load_tokenizer(name_or_path: str | os.PathLike | None = None, corpus: Corpus | None = None, segmenter=None):
    """(tokenizer, description). Tries `name_or_path` (a model directory or a hub id in
    the local cache), else `vinai/phobert-base-v2` from the local cache, else builds the
    tiny backbone's PhoBERT-style BPE tokenizer from `corpus` (offline, as training
    does). The description says which one it is: counts depend on it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    for candidate in [name_or_path, "vinai/phobert-base-v2"]:
        if candidate is None:
            continue
        try:
            return AutoTokenizer.from_pretrained(str(candidate), local_files_only=True), str(candidate)
        except Exception:  # noqa: BLE001 - not available offline: try the next one
            if candidate == name_or_path:
                raise
    if corpus is None:
        raise ValueError("no PhoBERT tokenizer available offline; pass a corpus to build the tiny one")
    from transformers import PhobertTokenizer

    from .train.config import TinyBackboneConfig
    from .data.sentences import document_sentences
    from .train.tiny_backbone import build_tokenizer_files

    words = [w for doc in corpus.documents for s in document_sentences(doc, segmenter) for w in s.surfaces()]
    with tempfile.TemporaryDirectory(prefix="tiny-tokenizer-") as tmp:  # read at init: removable at once
        build_tokenizer_files(words, Path(tmp), TinyBackboneConfig().vocab_size)
        tokenizer = PhobertTokenizer(str(Path(tmp) / "vocab.txt"), str(Path(tmp) / "bpe.codes"))
    return tokenizer, "tiny offline PhoBERT-style BPE (vinai/phobert-base-v2 not in the local cache)"


def sentence_token_lengths(corpus: Corpus, segmenter, tokenizer) -> list[tuple[str, int]]:
    """(document, length in PhoBERT tokens incl. <s> and </s>) for every sentence as
    training builds it (gold-aligned, before splitting into 256-token windows)."""
    from .model.encoding import WordPieces
    from .data.sentences import document_sentences

    pieces = WordPieces(tokenizer)
    return [(document_name(doc), sum(pieces.count(w) for w in s.surfaces()) + 2)
            for doc in corpus.documents for s in document_sentences(doc, segmenter)]


def token_length_table(lengths: list[tuple[str, int]], limit: int = PHOBERT_MAX_TOKENS) -> Table:
    values = sorted(n for _, n in lengths)
    over = sum(1 for n in values if n > limit)
    rows = [[len(values), values[0], values[len(values) // 2], round(sum(values) / len(values), 1),
             values[-1], over]] if values else []
    return Table(["sentences", "min", "median", "mean", "max", f"> {limit}"], rows,
                 "Sentence length in PhoBERT tokens (incl. <s> </s>)")


def fig_sentence_tokens(lengths: list[tuple[str, int]], limit: int = PHOBERT_MAX_TOKENS, tokenizer_name: str = ""):
    """Histogram of sentence lengths in PhoBERT tokens, with the 256-token limit drawn."""
    values = [n for _, n in lengths]
    fig = _figure(9, 4)
    ax = fig.subplots()
    top = max(values + [limit]) * 1.08
    bins = [i * 8 for i in range(int(top // 8) + 2)]
    ax.hist(values, bins=bins, color="#1f77b4", edgecolor="white")
    ax.axvline(limit, color="#d62728", linestyle="--", linewidth=2)
    over = sum(1 for n in values if n > limit)
    ax.text(limit - top * 0.01, ax.get_ylim()[1] * 0.95,
            f"PhoBERT limit: {limit} tokens\n{over} sentence(s) longer\n(split into windows)",
            color="#d62728", va="top", ha="right", fontsize=9)
    ax.set_xlim(0, top)
    ax.set_xlabel("sentence length in PhoBERT tokens (incl. <s> and </s>)")
    ax.set_ylabel("sentences")
    title = f"Sentence lengths: {len(values)} sentences, median {sorted(values)[len(values) // 2] if values else 0}, max {max(values, default=0)}"
    ax.set_title(title + (f"\ntokenizer: {tokenizer_name}" if tokenizer_name else ""), fontsize=10)
    return fig


# -- model -------------------------------------------------------------------------------
def run_config(data: dict):
    """A validated `RunConfig` from a config dict (e.g. metadata.json's "config"), through
    the same validation as a YAML file."""
    import yaml

    from .train.config import load_config

    with tempfile.TemporaryDirectory(prefix="run-config-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return load_config(path)


def model_config(model_dir: str | os.PathLike):
    """The run config stored in an exported model's metadata.json, with relative data
    paths resolved against the repository root."""
    metadata = json.loads((Path(model_dir) / "metadata.json").read_text(encoding="utf-8"))
    config = run_config(metadata["config"])
    data = config.data
    for key in ("train", "dev", "test", "labeling_config"):
        value = getattr(data, key)
        if value:
            setattr(data, key, str(_resolve(value)))
    return config


def train_tiny_model(work_dir: str | os.PathLike | None = None, epochs: int = 8) -> Path:
    """Train the tiny offline model on the gold corpus (about 10 s on 2 idle CPU cores)
    and return its exported directory, under `work_dir`; by default a new temporary
    folder, removed when the process (the notebook's kernel) exits."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .train.config import load_config
    from .train.pipeline import run_once

    root = repo_root()
    if work_dir:
        work = Path(work_dir)
    else:
        work = Path(tempfile.mkdtemp(prefix="ner-report-"))
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    config = load_config(root / "configs" / "tiny.yaml", [
        f"data.train={root / DEFAULT_EXPORT}", f"data.labeling_config={root / DEFAULT_LABELING_CONFIG}",
        f"model.tiny.epochs={epochs}", f"output.dir={work / 'models'}", f"output.checkpoints={work / 'ckpt'}",
    ])
    return Path(run_once(config, False))


def ensure_model(model_dir: str | os.PathLike | None = None, work_dir: str | os.PathLike | None = None) -> Path:
    """`model_dir` when given (checked), else a freshly trained tiny model."""
    if model_dir:
        path = Path(model_dir)
        if not (path / "metadata.json").is_file():
            raise FileNotFoundError(f"{path}: not an exported model directory (no metadata.json)")
        return path
    return train_tiny_model(work_dir)


def read_metrics(model_dir: str | os.PathLike) -> dict:
    return json.loads((Path(model_dir) / "metrics.json").read_text(encoding="utf-8"))


def read_training_log(model_dir: str | os.PathLike) -> list[dict]:
    return json.loads((Path(model_dir) / "training_log.json").read_text(encoding="utf-8"))


@dataclass
class SentenceResult:
    """One sentence of the shared word grid with its gold and predicted spans."""

    doc: Document
    start: int
    end: int
    gold: list[Span]
    predicted: list[Span]

    @property
    def errors(self) -> int:
        key = lambda s: (s.start, s.end, s.label)  # noqa: E731
        gold, pred = {key(s) for s in self.gold}, {key(s) for s in self.predicted}
        return len(gold ^ pred)


@dataclass
class Evaluation:
    """`training.evaluate.evaluate_documents`, keeping the word-level tags and sentences."""

    metrics: dict
    errors: list[dict]
    gold_tags: list[list[str]]
    pred_tags: list[list[str]]
    sentences: list[SentenceResult] = field(default_factory=list)
    labels: tuple[str, ...] = ()
    split: str = "test"


def evaluation_documents(model_dir: str | os.PathLike) -> tuple[list[Document], str]:
    """The documents a model was evaluated on (its test split, else dev) and the split name."""
    from .data.splits import load_splits

    config = model_config(model_dir)
    splits = load_splits(config.data, config.seed)
    return (splits.test, "test") if splits.test else (splits.dev, "dev")


def evaluate_model(model, documents: Sequence[Document], split: str = "test") -> Evaluation:
    """`training.evaluate.score_documents` (the predict() path and its scoring grid),
    keeping the grid's sentences for the confusion matrix and the error pages."""
    from .train.evaluate import score_documents

    scores = score_documents(model, documents)
    sentences = []
    for row in scores.grid:
        lo, hi = row.words[0][0], row.words[-1][1]
        spans = lambda tags: tags_to_spans(row.words, tags, row.doc.text)  # noqa: E731
        sentences.append(SentenceResult(row.doc, lo, hi, spans(row.gold), spans(row.predicted)))
    return Evaluation(scores.metrics, scores.errors, [r.gold for r in scores.grid], [r.predicted for r in scores.grid],
                      sentences, tuple(model.labels), split)


def load_and_evaluate(model_dir: str | os.PathLike):
    """(model, Evaluation on its own test split), fp32 as at export so the numbers match metrics.json."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .inference import load_model

    model = load_model(model_dir, precision="fp32")
    documents, split = evaluation_documents(model_dir)
    return model, evaluate_model(model, documents, split)


def seqeval_table(metrics: dict) -> Table:
    """The seqeval report (strict IOB2) as a Table."""
    rows = [[label, s["precision"], s["recall"], s["f1-score"], int(s["support"])]
            for label, s in sorted(metrics["per_type"].items())]
    rows.append(["micro avg", metrics["precision"], metrics["recall"], metrics["f1"], int(metrics["support"])])
    rows.append(["macro f1", "", "", metrics["macro_f1"], ""])
    return Table(["type", "precision", "recall", "f1", "support"], rows, "seqeval, strict IOB2 (entity level)")


def fig_per_type_f1(metrics: dict, title: str = ""):
    """Per type: precision, recall and F1 bars (F1 labelled), support under each type."""
    per_type = metrics["per_type"]
    labels = sorted(per_type)
    colors = _colors(labels)
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    xs = list(range(len(labels)))
    width = 0.26
    ax.bar([x - width for x in xs], [per_type[l]["precision"] for l in labels], width, color="#c7c7c7", label="precision")
    ax.bar(xs, [per_type[l]["recall"] for l in labels], width, color="#8c8c8c", label="recall")
    bars = ax.bar([x + width for x in xs], [per_type[l]["f1-score"] for l in labels], width,
                  color=[colors[l] for l in labels], label="F1")
    ax.bar_label(bars, labels=[f"{per_type[l]['f1-score']:.2f}" for l in labels], padding=2, fontsize=9)
    ax.axhline(metrics["f1"], color="black", linestyle=":", linewidth=1, label=f"micro F1 {metrics['f1']:.3f}")
    ax.set_xticks(xs, [f"{l}\n(n={int(per_type[l]['support'])})" for l in labels])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("score")
    ax.legend(loc="upper left", ncols=4, fontsize=9, frameon=False)
    ax.set_title(title or f"Per-type scores (seqeval strict), macro F1 {metrics['macro_f1']:.3f}")
    return fig


def collapse(tag: str) -> str:
    """`B-ORG`/`I-ORG` -> `ORG`; `O` stays."""
    return tag if tag == "O" else tag[2:]


def confusion(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]],
              labels: Sequence[str]) -> tuple[list[str], list[list[int]]]:
    """Word-level confusion counts with B-/I- collapsed: (classes, counts[gold][predicted])."""
    classes = [*labels, "O"]
    index = {c: i for i, c in enumerate(classes)}
    counts = [[0] * len(classes) for _ in classes]
    for gold, pred in zip(gold_tags, pred_tags):
        for g, p in zip(gold, pred):
            counts[index[collapse(g)]][index[collapse(p)]] += 1
    return classes, counts


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def fig_confusion(gold_tags, pred_tags, labels: Sequence[str], title: str = ""):
    """Heat map of word-level confusion (rows: gold, columns: predicted), each cell
    annotated with its count; colour is the share of the gold row, so rare types show."""
    classes, counts = confusion(gold_tags, pred_tags, labels)
    shares = [[c / max(1, sum(row)) for c in row] for row in counts]
    fig = _figure(6.8, 5.8)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value}\n{_percent(shares[i][j])}" if value else "0", ha="center", va="center", fontsize=9,
                    color="white" if shares[i][j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    total = sum(map(sum, counts))
    correct = sum(counts[i][i] for i in range(len(classes)))
    ax.set_title(title or f"Word-level confusion (B-/I- collapsed), {total} words, {correct / max(1, total):.1%} agree",
                 fontsize=10)
    fig.colorbar(image, ax=ax, label="share of the gold row", shrink=0.8)
    return fig


def learning_curve(log: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """From a Trainer log_history: (epoch, value) for train loss, dev loss and dev F1."""
    curves: dict[str, list[tuple[float, float]]] = {"loss": [], "eval_loss": [], "eval_f1": []}
    for entry in log:
        for key in curves:
            if key in entry and "epoch" in entry:
                curves[key].append((float(entry["epoch"]), float(entry[key])))
    return curves


def fig_learning_curve(log: Sequence[dict], title: str = ""):
    """Training and dev loss (left axis) and dev F1 (right axis) per epoch; the best
    dev F1 (the checkpoint kept) is marked."""
    curves = learning_curve(log)
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    if curves["loss"]:
        ax.plot(*zip(*curves["loss"]), color="#1f77b4", label="train loss")
    if curves["eval_loss"]:
        ax.plot(*zip(*curves["eval_loss"]), color="#ff7f0e", marker="o", markersize=3, label="dev loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    if curves["eval_f1"]:
        right = ax.twinx()
        right.plot(*zip(*curves["eval_f1"]), color="#2ca02c", marker="s", markersize=3, label="dev F1")
        best_epoch, best = max(curves["eval_f1"], key=lambda p: (p[1], -p[0]))
        right.annotate(f"best dev F1 {best:.3f}\n(epoch {best_epoch:g})", (best_epoch, best),
                       xytext=(0, 28 if best < 0.7 else -40), textcoords="offset points", ha="center",
                       va="bottom" if best < 0.7 else "top", fontsize=9, color="#2ca02c",
                       bbox={"boxstyle": "round", "fc": "white", "ec": "#2ca02c", "alpha": 0.9},
                       arrowprops={"arrowstyle": "->", "color": "#2ca02c"})
        right.set_ylim(0, 1.05)
        right.set_ylabel("dev F1 (seqeval strict)")
        more_handles, more_names = right.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=len(names), fontsize=9,
              frameon=False)
    ax.set_title(title or "Learning curve")
    return fig


def errors_table(errors: Sequence[dict], limit: int = 20) -> Table:
    rows = [[e["kind"].replace("_", " "), e["label"], e["text"], document_name(Document(e["doc_id"], "", [], e["source"]))]
            for e in errors[:limit]]
    title = f"Errors ({len(errors)}; first {min(limit, len(errors))})"
    return Table(["kind", "type", "text", "document"], rows, title)


# -- HTML --------------------------------------------------------------------------------
def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def render_spans(text: str, spans: Sequence[Span], offset: int = 0, colors: dict[str, str] | None = None,
                 wrong: set | None = None) -> str:
    """displaCy-style HTML: `text` (starting at `offset` in the document) with each span
    highlighted in its type's colour and labelled; spans in `wrong` (keys (start, end,
    label)) get a red dashed outline."""
    colors = colors or {}
    out, position = [], 0
    for span in sorted(spans):
        start, end = span.start - offset, span.end - offset
        out.append(html.escape(text[position:start]))
        color = colors.get(span.label, "#7f7f7f")
        outline = ("outline: 2px dashed #d62728; " if wrong and (span.start, span.end, span.label) in wrong else "")
        out.append(
            f'<mark class="entity" style="background: {_rgba(color, 0.22)}; {outline}padding: 0.2em 0.35em; '
            f'margin: 0 0.15em; line-height: 2.2; border-radius: 0.35em; border-bottom: 3px solid {color};">'
            f"{html.escape(text[start:end])}"
            f'<span style="font-size: 0.7em; font-weight: bold; color: {color}; vertical-align: middle; '
            f'margin-left: 0.4em;">{html.escape(span.label)}</span></mark>')
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


class HTML(str):
    """A string a notebook displays as HTML."""

    def _repr_html_(self) -> str:
        return str(self)


def worst_errors_html(evaluation: Evaluation, n: int = 5) -> HTML:
    """The `n` sentences with the most errors, each rendered twice (gold, predicted);
    spans that are errors (missed, spurious, wrong type or boundary) are outlined in red."""
    colors = _colors(evaluation.labels)
    key = lambda s: (s.start, s.end, s.label)  # noqa: E731
    ranked = sorted((s for s in evaluation.sentences if s.errors), key=lambda s: -s.errors)[:n]
    parts = [f'<div class="ner-errors" style="font-family: sans-serif; font-size: 14px;">'
             f"<h4>Worst {len(ranked)} sentence(s) by number of span errors ({evaluation.split} split)</h4>"
             '<p style="font-size: 12px;">Red dashed outline: a span that does not match exactly '
             "(a miss in gold, a spurious or mis-typed one in predicted).</p>"]
    if not ranked:
        parts.append("<p><i>No errors: every predicted span matches the gold spans.</i></p>")
    for sentence in ranked:
        text = sentence.doc.text[sentence.start:sentence.end]
        gold, pred = {key(s) for s in sentence.gold}, {key(s) for s in sentence.predicted}
        parts.append(
            f'<div style="border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; margin: 10px 0;">'
            f'<div style="font-size: 12px; color: #555;">{html.escape(document_name(sentence.doc))} '
            f"[{sentence.start}:{sentence.end}], {sentence.errors} error(s)</div>"
            f'<div><b style="display: inline-block; width: 6em;">gold</b>'
            f"{render_spans(text, sentence.gold, sentence.start, colors, gold - pred)}</div>"
            f'<div><b style="display: inline-block; width: 6em;">predicted</b>'
            f"{render_spans(text, sentence.predicted, sentence.start, colors, pred - gold)}</div></div>")
    parts.append("</div>")
    return HTML("".join(parts))


# -- python -m training.report -----------------------------------------------------------
def corpus_figures(export: str | os.PathLike = DEFAULT_EXPORT, tokenizer: str | None = None) -> dict:
    """name -> Figure for every corpus plot."""
    from .text.segmentation import get_segmenter

    schema = load_schema()
    corpus = load_corpus(export, schema)
    labels = corpus_labels(corpus, schema)
    segmenter = get_segmenter("underthesea")
    tok, tok_name = load_tokenizer(tokenizer, corpus, segmenter)
    forms = top_surface_forms(corpus, labels)
    return {
        "corpus_entity_counts": fig_entity_counts(corpus, labels),
        "corpus_span_lengths": fig_span_lengths(span_lengths(corpus, segmenter), labels),
        "corpus_surface_forms": fig_surface_forms(forms),
        "corpus_sentence_tokens": fig_sentence_tokens(sentence_token_lengths(corpus, segmenter, tok),
                                                      tokenizer_name=tok_name),
    }


def model_figures(model_dir: str | os.PathLike) -> tuple[dict, str]:
    """(name -> Figure for every model plot, worst-errors HTML)."""
    _, evaluation = load_and_evaluate(model_dir)
    name = Path(model_dir).name
    figures = {
        "model_per_type_f1": fig_per_type_f1(evaluation.metrics, f"{name}: per-type scores on the {evaluation.split} "
                                             f"split (seqeval strict), macro F1 {evaluation.metrics['macro_f1']:.3f}"),
        "model_confusion": fig_confusion(evaluation.gold_tags, evaluation.pred_tags, evaluation.labels),
        "model_learning_curve": fig_learning_curve(read_training_log(model_dir), f"{name}: learning curve"),
    }
    return figures, worst_errors_html(evaluation)


def write_figures(directory: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                  export: str | os.PathLike = DEFAULT_EXPORT) -> list[Path]:
    """Write every plot as `<name>.png` (and worst_errors.html) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="ner-report-") as work:
        model_path = ensure_model(model_dir, work)
        figures, errors_html = model_figures(model_path)
        figures = {**corpus_figures(export, str(model_path) if model_dir else None), **figures}
        for name, figure in figures.items():
            path = directory / f"{name}.png"
            figure.savefig(path, dpi=110)
            written.append(path)
        page = directory / "worst_errors.html"
        page.write_text(f"<!doctype html><meta charset='utf-8'><title>{html.escape(model_path.name)}: worst errors"
                        f"</title>{errors_html}\n", encoding="utf-8")
        written.append(page)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", required=True, metavar="DIR", help="write every plot as PNG into DIR")
    parser.add_argument("--model", metavar="MODEL_DIR",
                        help="an exported model directory; default: train the tiny model into a temporary directory")
    parser.add_argument("--data", default=DEFAULT_EXPORT, help="Label Studio export for the corpus plots (default: %(default)s)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    try:
        written = write_figures(args.figures, args.model, args.data)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
