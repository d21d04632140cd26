"""Every plot as a PNG file and the worst-errors page as HTML, as `python -m
training.report` writes them: the same figures the notebooks show."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from ..text.segmentation import get_segmenter
from .corpus import corpus_labels, load_corpus, load_schema, span_lengths, top_surface_forms
from .evaluation import load_and_evaluate
from .figures import (fig_confusion, fig_entity_counts, fig_learning_curve, fig_per_type_f1, fig_sentence_tokens,
                      fig_span_lengths, fig_surface_forms)
from .markup import HTML, worst_errors_html
from .models import ensure_model, read_training_log
from .paths import DEFAULT_EXPORT
from .tokens import load_tokenizer, sentence_token_lengths


def corpus_figures(export: str | os.PathLike = DEFAULT_EXPORT, tokenizer: str | None = None) -> dict[str, Figure]:
    """name -> Figure for every corpus plot."""
    schema = load_schema()
    corpus = load_corpus(export, schema)
    labels = corpus_labels(corpus, schema)
    segmenter = get_segmenter("underthesea")
    tok, tok_name = load_tokenizer(tokenizer, corpus, segmenter)
    return {
        "corpus_entity_counts": fig_entity_counts(corpus, labels),
        "corpus_span_lengths": fig_span_lengths(span_lengths(corpus, segmenter), labels),
        "corpus_surface_forms": fig_surface_forms(top_surface_forms(corpus, labels)),
        "corpus_sentence_tokens": fig_sentence_tokens(sentence_token_lengths(corpus, segmenter, tok),
                                                      tokenizer_name=tok_name),
    }


def model_figures(model_dir: str | os.PathLike) -> tuple[dict[str, Figure], HTML]:
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
    """Write every plot as `<name>.png` (and worst_errors.html) into `directory`; without
    `model_dir`, the tiny model is trained into a temporary folder first."""
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
