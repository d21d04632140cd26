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

    def __init__(self, patience: int, bar: float = float("-inf")):
        self.patience = patience
        self.best = bar
        self.waited = 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        f1 = (metrics or {}).get("eval_f1")
        if f1 is None:
            return
        if f1 > self.best:
            self.best, self.waited = f1, 0
            return
        self.waited += 1
        if self.waited >= self.patience:
            log.info("early stopping: no dev F1 above %.4f in %d evaluations", self.best, self.waited)
            control.should_training_stop = True


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
