"""A linear-chain CRF over word-level emissions (the `crf` head).

The encoder's logits at each word's first sub-token are the emissions; the CRF adds
learned start/transition/end scores, with invalid IOB2 moves fixed at -1e4 during both
training and Viterbi decoding. Torch only: the exported model
format (artifact.py) saves and loads its parameters.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .decoding import transition_mask, viterbi
from .encoding import IGNORE_INDEX


class LinearChainCRF(nn.Module):
    def __init__(self, tags: Sequence[str]):
        super().__init__()
        self.tags = list(tags)
        n = len(self.tags)
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        self.transitions = nn.Parameter(torch.zeros(n, n))
        start_mask, trans_mask = transition_mask(self.tags)
        self.register_buffer("start_mask", start_mask, persistent=False)
        self.register_buffer("trans_mask", trans_mask, persistent=False)

    def constrained(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (self.start + self.start_mask).float(), (self.transitions + self.trans_mask).float(), self.end.float()

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood; emissions [B, W, L], tags [B, W], mask [B, W] (left-aligned)."""
        start, trans, end = self.constrained()
        emissions = emissions.float()
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        tags = tags.clamp(min=0)
        width = emissions.shape[1]
        # The same arithmetic, in the same order, as a step-by-step loop over words (so the
        # loss and its gradients are bit for bit those of the loop), with the per-word slicing
        # done once: each word's emissions are views of one unbind, not a slice per step whose
        # backward fills a whole [B, W, L] zero tensor. Transitions stay one gather per step:
        # their gradient contributions then add up in the loop's order.
        gold = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [B, W]: each word's gold-tag emission
        score = start[tags[:, 0]] + gold[:, 0]  # score of the gold path
        if width > 1:
            moves = torch.stack([trans[tags[:, k - 1], tags[:, k]] for k in range(1, width)], dim=1)
            for step in ((moves + gold[:, 1:]) * mask[:, 1:]).unbind(1):
                score = score + step
        lengths = mask.long().sum(dim=1)
        score = score + end[tags[batch, lengths - 1]]
        # log partition function
        words = emissions.unbind(1)
        inside = mask.bool().unsqueeze(2).unbind(1)  # [B, 1] per word
        alpha = start + words[0]
        for k in range(1, width):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + words[k].unsqueeze(1), dim=1)
            alpha = torch.where(inside[k], nxt, alpha)
        log_z = torch.logsumexp(alpha + end, dim=1)
        return (log_z - score).mean()

    def decode(self, emissions: torch.Tensor) -> list[int]:
        start, trans, end = self.constrained()
        return viterbi(emissions, start, trans, end)


def word_emissions(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack first-sub-token logits (where labels != -100) into [B, W, L] with word tags and mask."""
    keep = labels != IGNORE_INDEX
    counts = keep.sum(dim=1)
    width = max(int(counts.max()), 1)
    rows, positions = keep.nonzero(as_tuple=True)  # row by row, positions ascending
    words = keep.cumsum(dim=1)[rows, positions] - 1  # each kept position's word index in its row
    emissions = logits.new_zeros(logits.shape[0], width, logits.shape[2])
    emissions[rows, words] = logits[rows, positions]
    tags = labels.new_zeros(logits.shape[0], width)
    tags[rows, words] = labels[rows, positions]
    mask = (torch.arange(width, device=logits.device) < counts.unsqueeze(1)).float()
    return emissions, tags, mask
