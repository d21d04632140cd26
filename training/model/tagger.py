"""The trained unit: encoder (+ word-feature emissions) + decoder head.

`TokenTagger` is what the Trainer optimises and what predict() runs: the encoder's
token logits, plus the hashed word-feature emissions when the model has them, are the
word emissions; the `softmax` head trains them with cross-entropy, the `crf` head with
the CRF's negative log-likelihood over words. With word features, `emission_dropout`
zeroes the encoder's emissions of random words during training, so that the feature
weights learn to tag on their own and the encoder does not simply memorise the
training sentences. Exported as the encoder's own files (save_pretrained),
`crf.safetensors` and `word_features.safetensors` (model/artifact.py). Torch only, so
the inference module builds it without training-only imports.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from transformers.modeling_outputs import TokenClassifierOutput

from .crf import LinearChainCRF, word_emissions
from .encoding import IGNORE_INDEX
from .word_features import WordFeatureEmissions


class TokenTagger(nn.Module):
    def __init__(self, encoder: nn.Module, tags: Sequence[str], head: str = "softmax",
                 crf: LinearChainCRF | None = None, word_features: WordFeatureEmissions | None = None,
                 emission_dropout: float = 0.0):
        super().__init__()
        if head not in ("softmax", "crf"):
            raise ValueError(f"head must be 'softmax' or 'crf', not {head!r}")
        self.encoder = encoder
        self.config = encoder.config
        self.tags = list(tags)
        self.head = head
        self.crf = (crf or LinearChainCRF(tags)) if head == "crf" else None
        self.word_features = word_features
        self.emission_dropout = emission_dropout

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, word_features=None, labels=None):
        logits = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        if self.word_features is not None:
            if self.training and self.emission_dropout > 0:
                # the features must also tag alone: drop the encoder's emissions of some words
                keep = torch.rand(logits.shape[:2], device=logits.device) >= self.emission_dropout
                logits = logits * keep.unsqueeze(-1)
            logits = logits.float() + self.word_features(word_features).float()
        loss = None
        if labels is not None:
            if self.crf is not None:
                loss = self.crf.nll(*word_emissions(logits, labels))
            else:
                loss = nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1),
                                                   ignore_index=IGNORE_INDEX)
        return TokenClassifierOutput(loss=loss, logits=logits)

    @property
    def feature_buckets(self) -> int:
        return self.word_features.buckets if self.word_features is not None else 0

    def parameter_groups(self, learning_rate: float, weight_decay: float, feature_learning_rate: float) -> list[dict]:
        """AdamW groups: matrices decay, biases and norms do not (as the Trainer does), and
        the sparse feature table has its own, higher learning rate and no decay."""
        features = {id(p) for p in self.word_features.parameters()} if self.word_features is not None else set()
        rest = [(n, p) for n, p in self.named_parameters() if id(p) not in features and p.requires_grad]
        groups = [{"params": [p for _, p in rest if p.ndim >= 2], "weight_decay": weight_decay, "lr": learning_rate},
                  {"params": [p for _, p in rest if p.ndim < 2], "weight_decay": 0.0, "lr": learning_rate}]
        if features:
            groups.append({"params": list(self.word_features.parameters()), "weight_decay": 0.0,
                           "lr": feature_learning_rate})
        return groups
