"""Every plot of the notebooks and `python -m training.report`, each a matplotlib
`Figure` built without pyplot: nothing pops up, nothing leaks between calls, and no
backend has to be chosen (a notebook shows the figure, `savefig` writes it)."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from matplotlib.figure import Figure

from ..data.readers import Corpus
from .colors import type_colors
from .corpus import document_name
from .evaluation import confusion, learning_curve
from .tokens import PHOBERT_MAX_TOKENS


def _figure(width: float, height: float, **kwargs) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def _shorten(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _percent(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


# -- corpus ------------------------------------------------------------------------------
def _entities_per_type(ax, corpus: Corpus, labels: Sequence[str], colors: dict[str, str]) -> None:
    totals = Counter(span.label for doc in corpus.documents for span in doc.spans)
    bars = ax.bar(list(labels), [totals[label] for label in labels], color=[colors[label] for label in labels])
    ax.bar_label(bars, padding=2, fontsize=9)
    ax.set_title(f"Entities per type ({sum(totals.values())} in {len(corpus.documents)} articles)")
    ax.set_ylabel("entities")
    ax.margins(y=0.12)


def _entities_per_article(ax, corpus: Corpus, labels: Sequence[str], colors: dict[str, str]) -> None:
    names = [document_name(d) for d in corpus.documents]
    bottom = [0] * len(names)
    for label in labels:
        values = [sum(1 for s in d.spans if s.label == label) for d in corpus.documents]
        ax.barh(names, values, left=bottom, color=colors[label], label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    for y, total in enumerate(bottom):
        ax.text(total + 0.5, y, str(total), va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("entities")
    ax.set_title("Entities per article, by type")
    ax.legend(ncols=len(labels), loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False, fontsize=9)
    ax.margins(x=0.1)


def fig_entity_counts(corpus: Corpus, labels: Sequence[str]) -> Figure:
    """Two panels: total entities per type; entities per article stacked by type."""
    colors = type_colors(labels)
    fig = _figure(11, 4.2)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    _entities_per_type(left, corpus, labels, colors)
    _entities_per_article(right, corpus, labels, colors)
    return fig


def fig_span_lengths(lengths: dict[str, list[int]], labels: Sequence[str]) -> Figure:
    """One small histogram per type of span length in words."""
    colors = type_colors(labels)
    longest = max((max(v) for v in lengths.values() if v), default=1)
    xs = list(range(1, longest + 1))
    fig = _figure(2.3 * len(labels) + 0.6, 3.2)
    axes = fig.subplots(1, len(labels), sharey=True, squeeze=False)[0]
    for ax, label in zip(axes, labels):
        counts = Counter(lengths.get(label, []))
        bars = ax.bar(xs, [counts[x] for x in xs], color=colors[label])
        ax.bar_label(bars, labels=[str(counts[x]) if counts[x] else "" for x in xs], padding=1, fontsize=8)
        ax.set_title(f"{label} (n={sum(counts.values())})")
        ax.set_xticks(xs if longest <= 8 else [x for x in xs if x == 1 or x % 2 == 0])
        ax.set_xlabel("words")
    axes[0].set_ylabel("spans")
    axes[0].margins(y=0.12)
    fig.suptitle("Span length in words (underthesea segmentation, split at span edges)")
    return fig


def fig_surface_forms(forms: dict[str, list[tuple[str, int]]]) -> Figure:
    """Per type, a horizontal bar chart of its most frequent surface forms."""
    labels = list(forms)
    colors = type_colors(labels)
    rows = (len(labels) + 1) // 2
    fig = _figure(12, 1.0 + 1.6 * rows * 1.3)
    axes = fig.subplots(rows, 2, squeeze=False).ravel()
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


def fig_sentence_tokens(lengths: list[tuple[str, int]], limit: int = PHOBERT_MAX_TOKENS,
                        tokenizer_name: str = "") -> Figure:
    """Histogram of sentence lengths in PhoBERT tokens, with the 256-token limit drawn."""
    values = [n for _, n in lengths]
    fig = _figure(9, 4)
    ax = fig.subplots()
    top = max(values + [limit]) * 1.08
    ax.hist(values, bins=[i * 8 for i in range(int(top // 8) + 2)], color="#1f77b4", edgecolor="white")
    ax.axvline(limit, color="#d62728", linestyle="--", linewidth=2)
    over = sum(1 for n in values if n > limit)
    ax.text(limit - top * 0.01, ax.get_ylim()[1] * 0.95,
            f"PhoBERT limit: {limit} tokens\n{over} sentence(s) longer\n(split into windows)",
            color="#d62728", va="top", ha="right", fontsize=9)
    ax.set_xlim(0, top)
    ax.set_xlabel("sentence length in PhoBERT tokens (incl. <s> and </s>)")
    ax.set_ylabel("sentences")
    median = sorted(values)[len(values) // 2] if values else 0
    title = f"Sentence lengths: {len(values)} sentences, median {median}, max {max(values, default=0)}"
    ax.set_title(title + (f"\ntokenizer: {tokenizer_name}" if tokenizer_name else ""), fontsize=10)
    return fig


# -- model -------------------------------------------------------------------------------
def fig_per_type_f1(metrics: dict, title: str = "") -> Figure:
    """Per type: precision, recall and F1 bars (F1 labelled), support under each type."""
    per_type = metrics["per_type"]
    labels = sorted(per_type)
    colors = type_colors(labels)
    fig = _figure(9, 4.2)
    ax = fig.subplots()
    xs = list(range(len(labels)))
    width = 0.26
    ax.bar([x - width for x in xs], [per_type[t]["precision"] for t in labels], width, color="#c7c7c7", label="precision")
    ax.bar(xs, [per_type[t]["recall"] for t in labels], width, color="#8c8c8c", label="recall")
    bars = ax.bar([x + width for x in xs], [per_type[t]["f1-score"] for t in labels], width,
                  color=[colors[t] for t in labels], label="F1")
    ax.bar_label(bars, labels=[f"{per_type[t]['f1-score']:.2f}" for t in labels], padding=2, fontsize=9)
    ax.axhline(metrics["f1"], color="black", linestyle=":", linewidth=1, label=f"micro F1 {metrics['f1']:.3f}")
    ax.set_xticks(xs, [f"{t}\n(n={int(per_type[t]['support'])})" for t in labels])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("score")
    ax.legend(loc="upper left", ncols=4, fontsize=9, frameon=False)
    ax.set_title(title or f"Per-type scores (seqeval strict), macro F1 {metrics['macro_f1']:.3f}")
    return fig


def fig_confusion(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], labels: Sequence[str],
                  title: str = "") -> Figure:
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


def _dev_f1_axis(ax, points: list[tuple[float, float]]):
    """Dev F1 on a right-hand axis, the best (the checkpoint kept) annotated."""
    right = ax.twinx()
    right.plot(*zip(*points), color="#2ca02c", marker="s", markersize=3, label="dev F1")
    best_epoch, best = max(points, key=lambda p: (p[1], -p[0]))
    low = best < 0.7  # the note goes above a low point and below a high one
    right.annotate(f"best dev F1 {best:.3f}\n(epoch {best_epoch:g})", (best_epoch, best),
                   xytext=(0, 28 if low else -40), textcoords="offset points", ha="center",
                   va="bottom" if low else "top", fontsize=9, color="#2ca02c",
                   bbox={"boxstyle": "round", "fc": "white", "ec": "#2ca02c", "alpha": 0.9},
                   arrowprops={"arrowstyle": "->", "color": "#2ca02c"})
    right.set_ylim(0, 1.05)
    right.set_ylabel("dev F1 (seqeval strict)")
    return right


def fig_learning_curve(log: Sequence[dict], title: str = "") -> Figure:
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
        more_handles, more_names = _dev_f1_axis(ax, curves["eval_f1"]).get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    ax.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=len(names), fontsize=9,
              frameon=False)
    ax.set_title(title or "Learning curve")
    return fig
