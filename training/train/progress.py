"""A readable training log: a progress bar over the optimiser steps and one line per epoch.

Replaces the Trainer's own printing (a dict of numbers every `logging_steps`, interleaved
with its bars): the Trainer logs the train loss once per epoch (`logging_strategy:
epoch`), and `EpochLog` writes, above its bar,

    epoch E/N: train loss L, dev F1 F (best B, epoch K), S s

(and `before training: dev F1 ...` for an evaluation before the first epoch, the
warm-start feature CRF's).

The bar is tqdm's, on stderr, as the Trainer's was; on the non-zero ranks of a
distributed run nothing is printed.
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm
from transformers import TrainerCallback


class EpochLog(TrainerCallback):
    """One line per epoch (epoch, mean train loss, dev F1, seconds) and a bar over the steps."""

    def __init__(self):
        self.bar = None
        self.loss: float | None = None
        self.best: tuple[float, float] | None = None  # (dev F1, epoch)
        self.epoch_started = 0.0
        self.started = False  # an evaluation before the first epoch is the warm start's, not an epoch's

    def on_train_begin(self, args, state, control, **kwargs):
        self.epoch_started, self.started = time.perf_counter(), True
        if state.is_world_process_zero:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step",
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = logs["loss"]
            if args.eval_strategy == "no":  # no evaluation will follow: the epoch's line is complete
                self._line(state, None)
        if "eval_f1" in logs:
            if self.bar is not None:
                self._line(state, logs["eval_f1"])
            elif state.is_world_process_zero and not self.started:
                tqdm.write(f"before training: dev F1 {logs['eval_f1']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _line(self, state, f1: float | None) -> None:
        now = time.perf_counter()
        epoch = state.epoch or 0.0
        total = math.ceil(state.num_train_epochs) if state.num_train_epochs else None
        shown = f"{epoch:.0f}" if abs(epoch - round(epoch)) < 1e-6 else f"{epoch:.2f}"
        parts = [f"epoch {shown}{f'/{total}' if total else ''}:"]
        parts.append(f"train loss {self.loss:.4g}," if self.loss is not None else "train loss -,")
        if f1 is not None:
            if self.best is None or f1 > self.best[0]:
                self.best = (f1, epoch)
            best = "" if self.best[1] == epoch else f" (best {self.best[0]:.4f}, epoch {self.best[1]:.0f})"
            parts.append(f"dev F1 {f1:.4f}{best},")
        parts.append(f"{now - self.epoch_started:.1f} s")
        self.epoch_started, self.loss = now, None
        if self.bar is not None:
            self.bar.write(" ".join(parts))
