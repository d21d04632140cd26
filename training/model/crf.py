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
        # score of the gold path
        score = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        for k in range(1, emissions.shape[1]):
            step = trans[tags[:, k - 1], tags[:, k]] + emissions[batch, k, tags[:, k]]
            score = score + step * mask[:, k]
        lengths = mask.long().sum(dim=1)
        score = score + end[tags[batch, lengths - 1]]
        # log partition function
        alpha = start + emissions[:, 0]
        for k in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, k].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, k].unsqueeze(1).bool(), nxt, alpha)
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
    emissions = logits.new_zeros(logits.shape[0], width, logits.shape[2])
    tags = labels.new_zeros(logits.shape[0], width)
    mask = torch.zeros(logits.shape[0], width, device=logits.device)
    for row in range(logits.shape[0]):
        n = int(counts[row])
        emissions[row, :n] = logits[row][keep[row]]
        tags[row, :n] = labels[row][keep[row]]
        mask[row, :n] = 1
    return emissions, tags, mask
