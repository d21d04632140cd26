"""Warm start for the word features: fit them first as a plain feature CRF.

With the feature table at zero, the encoder and the table start together and AdamW
moves the table only as far as a few epochs of mini-batches allow; a feature CRF fit
to convergence (full-batch L-BFGS, L2 penalty, as crfsuite does) is a better starting
point. So before the Trainer runs, the table (and the CRF head's transitions) is fit
alone on the training sentences: the word emissions are the features' scores only, the
loss is the head's (CRF negative log-likelihood, or cross-entropy per word for the
softmax head). Training the encoder then starts from a model that already tags as well
as a feature CRF. Training only: the result is the same modules, saved as usual.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..model.crf import word_emissions
from ..model.encoding import IGNORE_INDEX, pad_batch

log = logging.getLogger(__name__)

BATCH = 256


@dataclass
class WarmStart:
    seconds: float
    evaluations: int
    loss: float  # per sentence, with the penalty


def word_batches(features: Sequence[dict]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Encoded training sentences (`SentenceDataset` rows) as (feature ids [B, W, K], tags
    [B, W], mask [B, W]) per batch: padded and packed to words as the CRF head's loss does."""
    labelled = [f for f in features if bool((torch.as_tensor(f["labels"]) != IGNORE_INDEX).any())]
    labelled.sort(key=lambda f: len(f["input_ids"]))
    batches = []
    for start in range(0, len(labelled), BATCH):
        padded = pad_batch(labelled[start:start + BATCH], pad_id=0)
        batches.append(word_emissions(padded["word_features"], padded["labels"]))
    return batches


def fit_features(tagger, features: Sequence[dict], l2: float, max_iterations: int) -> WarmStart:
    """Fit `tagger.word_features` (and `tagger.crf`, if the head has one) alone on the
    encoded training sentences; minimises the summed loss + l2 * ||weights||^2."""
    batches = word_batches(features)
    if tagger.word_features is None or not batches:
        raise ValueError("fit_features needs a tagger with word features and labelled sentences")
    sentences = sum(ids.shape[0] for ids, _, _ in batches)
    table = tagger.word_features.weights.weight
    parameters = [table, *(tagger.crf.parameters() if tagger.crf is not None else [])]
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=max_iterations, history_size=10,
                                  line_search_fn="strong_wolfe", tolerance_change=1e-9)
    evaluations, last = 0, 0.0
    # L-BFGS stops at convergence, so the bar counts loss evaluations without a total
    progress = tqdm(desc="warm start: feature CRF (L-BFGS)", delay=2.0, leave=False,
                    bar_format="{desc}: {n} loss evaluations [{elapsed}{postfix}]")

    def closure():
        nonlocal evaluations, last
        evaluations += 1
        optimizer.zero_grad()
        total = 0.0
        for ids, tags, mask in batches:
            emissions = tagger.word_features(ids).float()
            if tagger.crf is not None:
                loss = tagger.crf.nll(emissions, tags, mask) * ids.shape[0]
            else:
                loss = torch.nn.functional.cross_entropy(emissions[mask.bool()], tags[mask.bool()], reduction="sum")
            loss.backward()
            total += float(loss.detach())
        penalty = l2 * table.pow(2).sum()
        penalty.backward()
        last = total + float(penalty.detach())
        progress.update(1)
        progress.set_postfix_str(f"loss {last / sentences:.4f} per sentence", refresh=False)
        return torch.tensor(last)

    started = time.perf_counter()
    with torch.enable_grad():
        optimizer.step(closure)
    progress.close()
    result = WarmStart(time.perf_counter() - started, evaluations, last / sentences)
    log.info("word features fit as a feature CRF on %d sentences: %d evaluations, %.1f s, loss %.3f per sentence",
             sentences, result.evaluations, result.seconds, result.loss)
    return result
