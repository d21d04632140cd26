"""HTML for notebooks and the report: text with its spans highlighted displaCy-style,
and the page of a model's worst sentences, gold above predicted."""

from __future__ import annotations

import html
from typing import Sequence

from ..text.documents import Span
from .colors import type_colors
from .corpus import document_name
from .evaluation import Evaluation, SentenceResult, span_key

WRONG = "outline: 2px dashed #d62728; "


class HTML(str):
    """A string a notebook displays as HTML."""

    def _repr_html_(self) -> str:
        return str(self)


def _rgba(color: str, alpha: float) -> str:
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _mark(text: str, label: str, color: str, wrong: bool) -> str:
    return (f'<mark class="entity" style="background: {_rgba(color, 0.22)}; {WRONG if wrong else ""}'
            f'padding: 0.2em 0.35em; margin: 0 0.15em; line-height: 2.2; border-radius: 0.35em; '
            f'border-bottom: 3px solid {color};">{html.escape(text)}'
            f'<span style="font-size: 0.7em; font-weight: bold; color: {color}; vertical-align: middle; '
            f'margin-left: 0.4em;">{html.escape(label)}</span></mark>')


def render_spans(text: str, spans: Sequence[Span], offset: int = 0, colors: dict[str, str] | None = None,
                 wrong: set | None = None) -> str:
    """`text` (starting at `offset` in the document) with each span highlighted in its
    type's colour and labelled; spans in `wrong` (keys (start, end, label)) get a red
    dashed outline."""
    colors, wrong = colors or {}, wrong or set()
    out, position = [], 0
    for span in sorted(spans):
        start, end = span.start - offset, span.end - offset
        out.append(html.escape(text[position:start]))
        out.append(_mark(text[start:end], span.label, colors.get(span.label, "#7f7f7f"), span_key(span) in wrong))
        position = end
    out.append(html.escape(text[position:]))
    return "".join(out)


def _sentence_html(sentence: SentenceResult, colors: dict[str, str]) -> str:
    """One sentence twice, gold then predicted, spans without a match outlined."""
    text = sentence.doc.text[sentence.start:sentence.end]
    gold, pred = {span_key(s) for s in sentence.gold}, {span_key(s) for s in sentence.predicted}
    return (f'<div style="border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; margin: 10px 0;">'
            f'<div style="font-size: 12px; color: #555;">{html.escape(document_name(sentence.doc))} '
            f"[{sentence.start}:{sentence.end}], {sentence.errors} error(s)</div>"
            f'<div><b style="display: inline-block; width: 6em;">gold</b>'
            f"{render_spans(text, sentence.gold, sentence.start, colors, gold - pred)}</div>"
            f'<div><b style="display: inline-block; width: 6em;">predicted</b>'
            f"{render_spans(text, sentence.predicted, sentence.start, colors, pred - gold)}</div></div>")


def worst_errors_html(evaluation: Evaluation, n: int = 5) -> HTML:
    """The `n` sentences with the most errors, each rendered twice (gold, predicted);
    spans that are errors (missed, spurious, wrong type or boundary) are outlined in red."""
    colors = type_colors(evaluation.labels)
    ranked = sorted((s for s in evaluation.sentences if s.errors), key=lambda s: -s.errors)[:n]
    parts = [f'<div class="ner-errors" style="font-family: sans-serif; font-size: 14px;">'
             f"<h4>Worst {len(ranked)} sentence(s) by number of span errors ({evaluation.split} split)</h4>"
             '<p style="font-size: 12px;">Red dashed outline: a span that does not match exactly '
             "(a miss in gold, a spurious or mis-typed one in predicted).</p>"]
    if not ranked:
        parts.append("<p><i>No errors: every predicted span matches the gold spans.</i></p>")
    parts += [_sentence_html(sentence, colors) for sentence in ranked]
    parts.append("</div>")
    return HTML("".join(parts))
