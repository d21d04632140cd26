"""Constrained decoding: word-level label scores -> a valid IOB2 tag sequence.

Viterbi over per-word log-probabilities with transitions that forbid invalid IOB2
moves (`O -> I-X`, `B-X -> I-Y`, a sentence starting with `I-`), so neither evaluation
nor predict() ever sees an orphan `I-` tag. Needs only torch.
"""

from __future__ import annotations

from typing import Sequence

import torch

NEG_INF = -1e4


def transition_mask(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(start[L], trans[L, L]): 0 where allowed, NEG_INF where forbidden."""
    n = len(tags)
    start = torch.zeros(n)
    trans = torch.zeros(n, n)
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        start[j] = NEG_INF
        label = tag[2:]
        for i, previous in enumerate(tags):
            if previous not in (f"B-{label}", f"I-{label}"):
                trans[i, j] = NEG_INF
    return start, trans


def viterbi(scores: torch.Tensor, start: torch.Tensor, trans: torch.Tensor,
            end: torch.Tensor | None = None) -> list[int]:
    """Best path for one sentence; `scores` is [words, labels] (log-probs or emissions)."""
    if scores.shape[0] == 0:
        return []
    scores = scores.float()
    score = start + scores[0]
    history = []
    for k in range(1, scores.shape[0]):
        total = score.unsqueeze(1) + trans  # [from, to]
        best, index = total.max(dim=0)
        history.append(index)
        score = best + scores[k]
    if end is not None:
        score = score + end
    path = [int(score.argmax())]
    for index in reversed(history):
        path.append(int(index[path[-1]]))
    return path[::-1]


def best_path(logits: torch.Tensor, start: torch.Tensor, trans: torch.Tensor, crf=None) -> list[int]:
    """The one decoding rule for a sentence's word logits [words, labels]: the CRF over raw
    emissions for the crf head, else constrained Viterbi over log-probabilities."""
    if crf is not None:
        return crf.decode(logits)
    return viterbi(torch.log_softmax(logits.float(), dim=-1), start, trans)
