"""When the Trainer stops: early stopping on dev F1 (measured against the warm start,
if there is one) and a time budget (`train.max_minutes`, `model.tiny.max_minutes`)."""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback

log = logging.getLogger("training")


class EarlyStopping(TrainerCallback):
    """Stops after `patience` evaluations without a dev F1 above the best so far. The
    best starts at `bar`: with a warm start, its dev F1 plus one standard error, the
    score an epoch must beat to be exported at all (warm_start.keep_warm_start); so when the
    encoder cannot beat the feature CRF, training stops `patience` epochs in, not
    `patience` epochs after its own best. Unlike transformers' EarlyStoppingCallback it
    keeps no state in checkpoints: a resumed run starts its patience again."""

    def __init__(self, patience: int, bar: float = float("-inf"), warm_start: dict | None = None):
        self.patience = patience
        self.best = bar
        self.best_epoch: float | None = None
        self.beaten = False  # whether an evaluation beat `bar` (else the bar is still the warm start's)
        self.warm_start = warm_start  # WarmStartCandidate.record: dev_f1 and standard_error, which make `bar`
        self.waited = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        f1 = (metrics or {}).get("eval_f1")
        if f1 is None:
            return
        if f1 > self.best:
            self.best, self.best_epoch, self.beaten, self.waited = f1, state.epoch, True, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            log.info("early stopping: %d epochs without a dev F1 above %.4f, %s", self.waited, self.best,
                     self.bar_source())
            control.should_training_stop = True

    def bar_source(self) -> str:
        """What the score to beat is, in words."""
        if self.beaten:
            return f"the best epoch's (epoch {self.best_epoch:.0f})" if self.best_epoch else "the best epoch's"
        if self.warm_start:
            return (f"the warm-start feature CRF's dev F1 {self.warm_start['dev_f1']:.4f} plus one standard "
                    f"error ({self.warm_start['standard_error']:.4f}): no epoch beat it, so the feature CRF "
                    "is exported")
        return "the starting bar"


class TimeBudget(TrainerCallback):
    """Stops training before an epoch that would end past `minutes` (judged by the
    slowest epoch so far), or mid-epoch once the budget is spent; the best checkpoint
    evaluated so far is what gets exported. `since` (a perf_counter time) counts work
    done before the Trainer starts, such as the feature warm start, against the budget."""

    def __init__(self, minutes: float, since: float | None = None):
        self.minutes = minutes
        self.fired = False  # reported in metrics.json: a run the clock stopped is not reproducible
        self.seconds = minutes * 60
        self.since = since
        self.started = self.last_epoch_end = 0.0
        self.longest_epoch = 0.0  # including the evaluation and checkpoint of the epoch before

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_epoch_end = time.perf_counter()
        self.started = self.since if self.since is not None else self.last_epoch_end

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.started > self.seconds:
            log.warning("time budget of %.1f min spent mid-epoch: stopping", self.seconds / 60)
            control.should_training_stop = self.fired = True

    def on_epoch_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.longest_epoch = max(self.longest_epoch, now - self.last_epoch_end)
        self.last_epoch_end = now
        if not control.should_training_stop and now - self.started + self.longest_epoch > self.seconds:
            log.warning("time budget: %.1f of %.1f min used, epochs take %.1f min: stopping after epoch %d",
                        (now - self.started) / 60, self.seconds / 60, self.longest_epoch / 60, round(state.epoch))
            control.should_training_stop = self.fired = True
