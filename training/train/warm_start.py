"""The warm-start feature CRF as a candidate checkpoint.

Before the encoder trains, the word-feature table (and the CRF transitions) is fit
alone as a feature CRF (`feature_crf.fit_features`). That model is a candidate too, and
the simpler one: its dev F1 is measured before the first epoch, and an epoch of the
encoder is exported instead only if it beats it by more than one standard error of the
dev F1 (the one-standard-error rule). Early stopping counts from that same bar, so a
run whose encoder cannot beat the feature CRF stops `patience` epochs in.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Sequence

import torch

from ..model.tagger import TokenTagger
from .feature_crf import fit_features

log = logging.getLogger("training")

MAX_WARM_START_ITERATIONS = 300  # L-BFGS steps; a cap, not a schedule: it stops at convergence


class WarmStartCandidate:
    """Fits the feature CRF, measures it on dev, and settles whether it is kept."""

    def __init__(self, tagger: TokenTagger):
        self.tagger = tagger
        self.weights: dict | None = None
        self.record: dict | None = None  # dev_f1, standard_error; then best_epoch_dev_f1, kept

    def fit(self, features: Sequence[dict], l2: float) -> None:
        fit_features(self.tagger, features, l2, MAX_WARM_START_ITERATIONS)

    def measure(self, trainer) -> float:
        """Dev F1 of the feature CRF alone; returns the bar an epoch must beat."""
        with classifier_zeroed(self.tagger.encoder):
            scores = trainer.evaluate()
            self.weights = {k: v.detach().clone() for k, v in self.tagger.state_dict().items()}
        self.record = {"dev_f1": scores["eval_f1"],
                       "standard_error": f1_standard_error(scores["eval_f1"], scores["eval_support"])}
        bar = self.record["dev_f1"] + self.record["standard_error"]
        log.info("warm-start feature CRF: dev F1 %.4f; an epoch is exported instead only above %.4f "
                 "(plus one standard error, %.4f)", self.record["dev_f1"], bar, self.record["standard_error"])
        return bar

    def settle(self, best_epoch_f1: float | None) -> dict:
        """After training: keep the warm start (loading its weights back) unless the best
        epoch beat it by more than one standard error."""
        record = self.record
        record["best_epoch_dev_f1"] = best_epoch_f1 or 0.0
        record["kept"] = keep_warm_start(record["dev_f1"], record["best_epoch_dev_f1"], record["standard_error"])
        if record["kept"]:
            log.warning("exporting the warm-start feature CRF: the best epoch's dev F1 %.4f does not beat the "
                        "feature CRF's %.4f by more than one standard error (%.4f)",
                        record["best_epoch_dev_f1"], record["dev_f1"], record["standard_error"])
            self.tagger.load_state_dict(self.weights)
        return record


@contextmanager
def classifier_zeroed(model):
    """The encoder's token-classification layer at zero inside the block, restored after:
    the candidate is then exactly the feature CRF, not the feature CRF plus a fresh
    layer's random logits, while training still starts from that random layer (a zero
    layer gets no gradient once the feature table has memorised the training sentences)."""
    saved = [p.detach().clone() for p in model.classifier.parameters()]
    with torch.no_grad():
        for parameter in model.classifier.parameters():
            parameter.zero_()
    try:
        yield
    finally:
        with torch.no_grad():
            for parameter, value in zip(model.classifier.parameters(), saved):
                parameter.copy_(value)


def f1_standard_error(f1: float, support: int) -> float:
    """Binomial standard error of an entity-level F1 measured on `support` gold entities."""
    return (f1 * (1 - f1) / support) ** 0.5 if support else 0.0


def keep_warm_start(warm_f1: float, best_epoch_f1: float, standard_error: float) -> bool:
    """The one-standard-error rule: the simpler model wins unless the other beats it by
    more than the noise of the dev measurement."""
    return best_epoch_f1 <= warm_f1 + standard_error
