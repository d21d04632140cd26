"""Where a training step's time goes: the pipeline's Trainer against the raw step.

The tiny backbone with word features and the CRF head (configs/tiny.yaml), at the
config's batch size (8). Two numbers and a breakdown:

- **pipeline**: `training.train.loop.train_model` as `training.run` calls it, for a fixed
  number of epochs (no early stop, no warm start: neither changes a step's cost), with
  its per-epoch dev evaluation and checkpoint; steps/s = optimiser steps /
  `Trainer.train` wall time (`train_runtime`). Run a second time without a dev set
  (no evaluation, no best-checkpoint bookkeeping) to separate the per-epoch costs.
- **raw**: the same tagger, the same AdamW parameter groups, on the same batches
  collated in advance: forward + backward + AdamW step in a plain loop.
- **breakdown**: each part of a step timed alone on those batches (best of a few
  rounds), per optimiser step: reading and collating a batch, the encoder, the word
  features, packing words + CRF negative log-likelihood (forward + backward each), the
  AdamW step, the Trainer's gradient clipping; the per-epoch evaluation (model forward
  and the Viterbi decode of compute_metrics) and checkpoint, divided by the steps of an
  epoch; "Trainer, other" is what remains of the pipeline's step.

    python -m benchmarks.train_steps [--epochs 12] [--threads 1 --clock cpu]
        [--corpus build/bench/written --train-sentences 800 --dev-sentences 400]

`--corpus DIR` reads DIR/train.jsonl and DIR/dev.jsonl (`python -m benchmarks.written
--out build/bench/written` writes them) instead of the five gold articles.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time

from benchmarks.common import BUILD, ROOT, machine
from training.common.tables import Table

WORK = BUILD / "train_steps"


def _config(args):
    from training.train.config import load_config

    overrides = [f"model.tiny.epochs={args.epochs}", "model.feature_warm_start=false",
                 f"train.early_stopping_patience={args.epochs + 1}", "run_name=train-steps",
                 f"output.dir={WORK / 'models'}", f"output.checkpoints={WORK / 'ckpt'}"]
    if args.corpus:
        overrides += ["data.format=jsonl", "data.labeling_config=null", f"data.train={args.corpus}/train.jsonl",
                      f"data.dev={args.corpus}/dev.jsonl", "data.test=null"]
    else:
        overrides += [f"data.train={ROOT / 'annotations' / 'gold_export.json'}",
                      f"data.labeling_config={ROOT / 'annotations' / 'labeling_config.xml'}"]
    return load_config(ROOT / "configs" / "tiny.yaml", [*overrides, *args.set])


CLOCK = time.perf_counter  # or time.process_time (--clock cpu)


def pipeline(config, train_docs, dev_docs, labels, segmenter, name: str):
    """train_model as the pipeline runs it; (trained, seconds per step of `Trainer.train`)."""
    from transformers import Trainer

    from training.train.loop import train_model

    run_dir = WORK / "ckpt" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    timed = {}
    train = Trainer.train

    def timed_train(self, *args, **kwargs):  # the Trainer's run alone, on CLOCK
        started = CLOCK()
        try:
            return train(self, *args, **kwargs)
        finally:
            timed["seconds"] = CLOCK() - started

    Trainer.train = timed_train
    try:
        trained = train_model(config, train_docs, dev_docs, labels, run_dir, segmenter)
    finally:
        Trainer.train = train
    return trained, timed["seconds"] / trained.trainer.state.global_step


def best(fn, rounds: int) -> float:
    """Best seconds (on CLOCK) of `rounds` calls of fn()."""
    times = []
    for _ in range(rounds):
        started = CLOCK()
        fn()
        times.append(CLOCK() - started)
    return min(times)


def breakdown(trained, rounds: int, epochs: int) -> dict:
    """Seconds per optimiser step of each part, and of the raw step (`epochs` epochs, as the
    pipeline ran, after one epoch of warm-up)."""
    import torch

    from training.model.crf import word_emissions
    from training.train.evaluate import metrics_from_logits

    trainer, tagger = trained.trainer, trained.tagger
    loader = trainer.get_train_dataloader()
    batches = list(loader)
    n = len(batches)
    tagger.train()
    config = trained.trainer.args
    optimizer = torch.optim.AdamW(tagger.parameter_groups(config.learning_rate, config.weight_decay,
                                                          config.learning_rate), lr=config.learning_rate)
    parameters = [p for p in tagger.parameters() if p.requires_grad]

    def raw_epoch():
        for batch in batches:
            tagger(**batch).loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    def encoder_only():
        for batch in batches:
            tagger.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           token_type_ids=batch.get("token_type_ids")).logits.sum().backward()
        tagger.zero_grad()

    def features_only():
        for batch in batches:
            tagger.word_features(batch["word_features"]).float().sum().backward()
        tagger.zero_grad()

    logits = [torch.randn(*b["input_ids"].shape, len(tagger.tags), requires_grad=True) for b in batches]

    def pack_only():
        for logit, batch in zip(logits, batches):
            word_emissions(logit, batch["labels"])

    def crf_only():
        for logit, batch in zip(logits, batches):
            tagger.crf.nll(*word_emissions(logit, batch["labels"])).backward()

    def optimizer_only():
        for _ in batches:
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)

    def clip_only():
        for _ in batches:
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)

    raw_epoch()  # warm-up: optimiser state, allocator
    parts = {"raw step": best(lambda: [raw_epoch() for _ in range(epochs)], 1) / (n * epochs),
             "data: rows + collation": best(lambda: list(loader), rounds) / n,
             "encoder fwd+bwd": best(encoder_only, rounds) / n,
             "word features fwd+bwd": best(features_only, rounds) / n,
             "pack words (word_emissions)": best(pack_only, rounds) / n,
             "CRF nll fwd+bwd (incl. packing)": best(crf_only, rounds) / n}
    for p in parameters:
        p.grad = torch.zeros_like(p)
    parts["AdamW step"] = best(optimizer_only, rounds) / n
    parts["gradient clipping"] = best(clip_only, rounds) / n
    optimizer.zero_grad()
    if trainer.eval_dataset is not None:
        parts["evaluation (per epoch)"] = best(trainer.evaluate, rounds)
        output = trainer.predict(trainer.eval_dataset)
        parts["  of which Viterbi + seqeval"] = best(lambda: metrics_from_logits(
            output.predictions, output.label_ids, tagger.tags, tagger.crf), rounds)
    parts["checkpoint (per epoch)"] = best(lambda: trainer._save_checkpoint(trainer.model, trial=None), rounds)
    parts["steps per epoch"] = n
    return parts


def step_table(args) -> str:
    import torch

    from training.data.splits import load_splits
    from training.text.segmentation import get_segmenter

    config = _config(args)
    splits = load_splits(config.data, config.seed)
    train_docs = splits.train[:args.train_sentences] if args.train_sentences else splits.train
    dev_docs = splits.dev[:args.dev_sentences] if args.dev_sentences else splits.dev
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    print(f"pipeline, {args.epochs} epochs with dev evaluation ...", flush=True)
    trained, with_eval = pipeline(config, train_docs, dev_docs, splits.labels, segmenter, "with-dev")
    print(f"  {1 / with_eval:.2f} steps/s; pipeline without dev ...", flush=True)
    _, without_eval = pipeline(config, train_docs, [], splits.labels, segmenter, "no-dev")
    print(f"  {1 / without_eval:.2f} steps/s; raw steps and parts ...", flush=True)
    parts = breakdown(trained, args.rounds, args.epochs)
    shutil.rmtree(WORK / "ckpt", ignore_errors=True)
    n, raw = parts.pop("steps per epoch"), parts["raw step"]
    per_epoch = {k: parts[k] / n for k in parts if "per epoch" in k or k.startswith("  of which")}
    rows = [["pipeline, with dev (as training.run)", f"{1 / with_eval:.2f}", f"{with_eval * 1e3:.1f}",
             f"{raw / with_eval:.0%}"],
            ["pipeline, no dev", f"{1 / without_eval:.2f}", f"{without_eval * 1e3:.1f}", f"{raw / without_eval:.0%}"],
            ["raw step (fwd + bwd + AdamW, pre-collated)", f"{1 / raw:.2f}", f"{raw * 1e3:.1f}", "100%"]]
    rows.append(["breakdown, per optimiser step:", "", "", ""])
    for name, seconds in parts.items():
        if name == "raw step":
            continue
        per_step = per_epoch.get(name, seconds)
        label = f"{name.replace('(per epoch)', '')}(1 per {n} steps)" if name in per_epoch and "of which" not in name \
            else name
        rows.append([f"  {label}", "", f"{per_step * 1e3:.1f}", f"{per_step / raw:.0%}"])
    other = without_eval - raw - parts["data: rows + collation"] - parts["gradient clipping"] \
        - per_epoch["checkpoint (per epoch)"]
    rows.append(["  Trainer, other (no-dev step - raw - data - clipping - checkpoint)", "", f"{other * 1e3:.1f}",
                 f"{other / raw:.0%}"])
    corpus = args.corpus or "the five gold articles"
    title = (f"training steps: tiny backbone ({config.model.tiny.num_hidden_layers} x "
             f"{config.model.tiny.hidden_size}), word features + {config.model.head} head, batch "
             f"{config.train.batch_size}, {len(train_docs)} train / {len(dev_docs)} dev documents of {corpus}, "
             f"{n} steps per epoch, {args.epochs} epochs; torch threads {torch.get_num_threads()}, "
             f"{'CPU' if args.clock == 'cpu' else 'wall'} time")
    return "\n".join([title, str(Table(["", "steps/s", "ms/step", "share of raw step"], rows))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="timings of each part: best of this many")
    parser.add_argument("--corpus", help="a directory with train.jsonl and dev.jsonl (default: the gold articles)")
    parser.add_argument("--train-sentences", type=int, help="first N training documents only")
    parser.add_argument("--dev-sentences", type=int, help="first N dev documents only")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice); 1 steadies "
                        "the figures on a machine other work shares")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (with --threads 1: the work done, whatever "
                             "else the machine runs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    table = step_table(args)
    print("\n" + machine())
    print(table)
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
