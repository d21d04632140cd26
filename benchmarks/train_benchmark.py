"""Training benchmarks: (i) accuracy against underthesea's NER, (ii) training throughput fp32 vs bf16.

(i) On the five gold articles, leave-one-document-out (the folds `--cv` uses): the
project's tiny model (trained per fold on all five types) against underthesea `ner()`
(pretrained, no training). Both are scored on PER/LOC/ORG only, strict spans, with the
project's span-grid seqeval scoring (training.train.evaluate.score_spans). underthesea's
tokens are aligned back to character offsets by a sequential search that skips
whitespace; its MISC tags are dropped.

(ii) Training throughput on a synthetic corpus (benchmarks.synthetic), `train.bf16=false`
vs `train.bf16=true`, for the tiny backbone and for a PhoBERT-base-geometry backbone
(12 x 768, from scratch), each for a fixed small budget. Tokens/s = tokens fed
(sub-tokens incl. <s></s>, x epochs) / `Trainer.train` wall time (which includes one
checkpoint save per epoch), as metrics.json reports it. Dev F1 after the budget shows
whether bf16 costs accuracy.

    python -m benchmarks.train_benchmark [--sentences 2000] [--cv-epochs 6]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from benchmarks.common import BASE_GEOMETRY, BUILD, ROOT, machine, timed
from training.common.tables import Table

UNDERTHESEA_TYPES = ("PER", "LOC", "ORG")
WORK = BUILD / "train_benchmark"


# ------------------------------------------------------------------ underthesea -> spans


def tagged_to_spans(text: str, tokens: list[str], tags: list[str], start: int = 0, end: int | None = None,
                    keep=UNDERTHESEA_TYPES):
    """underthesea's tokens and B-/I- tags -> Spans of the types in `keep` (others read as O)."""
    from training.text.bio import tags_to_spans
    from training.text.segmentation import align_pieces

    words, kept = [], []
    for rng, tag in zip(align_pieces(text, tokens, start, end, lenient=True), tags):
        if rng is None:
            continue
        label = tag[2:] if tag[:2] in ("B-", "I-") else ""
        words.append(rng)
        kept.append(tag if label in keep else "O")
    return tags_to_spans(words, kept, text)


def underthesea_spans(text: str, keep=UNDERTHESEA_TYPES):
    """underthesea `ner()` on each non-empty line of `text`, as character Spans."""
    import re

    from underthesea import ner

    spans = []
    for line in re.finditer(r"[^\n]+", text):
        if not line.group(0).strip():
            continue
        result = ner(line.group(0))
        spans += tagged_to_spans(text, [r[0] for r in result], [r[-1] for r in result], line.start(), line.end(), keep)
    return spans


# ----------------------------------------------------------------------- (i) accuracy


def _config(overrides: list[str]):
    from training.train.config import load_config

    return load_config(ROOT / "configs" / "tiny.yaml", [
        f"output.dir={WORK / 'models'}", f"output.checkpoints={WORK / 'ckpt'}", *overrides])


def accuracy_table(cv_epochs: int, extra: list[str]) -> tuple[str, float]:
    from training.train.evaluate import score_spans
    from training.data.splits import leave_one_out, load_splits
    from training.train.export import in_memory_model
    from training.train.loop import train_model
    from training.text.segmentation import get_segmenter

    started = time.perf_counter()
    config = _config([f"model.tiny.epochs={cv_epochs}", "run_name=ute-cv", *extra])
    splits = load_splits(config.data, config.seed)
    documents = [*splits.train, *splits.dev, *splits.test]
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    ours, theirs, names = [], [], []
    for index, (train, dev, test) in enumerate(leave_one_out(documents, config.seed)):
        print(f"(i) fold {index + 1} of {len(documents)}: training the tiny model, then tagging with both ...",
              flush=True)
        run_dir = WORK / "ckpt" / f"ute-cv{index}"
        shutil.rmtree(run_dir, ignore_errors=True)
        trained = train_model(config, train, dev, splits.labels, run_dir, segmenter)
        model = in_memory_model(config, splits.labels, trained, run_dir)
        raws = [segmenter.segment(doc.text) for doc in test]
        predicted = [[span for span, _ in scored] for scored in model.entity_spans(list(zip([d.text for d in test], raws)))]
        ours.append(score_spans(test, raws, predicted, UNDERTHESEA_TYPES).metrics)
        theirs.append(score_spans(test, raws, [underthesea_spans(d.text) for d in test], UNDERTHESEA_TYPES).metrics)
        names.append(test[0].source or test[0].id)
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"fold {index} ({names[-1]}): ours F1 {ours[-1]['f1']:.3f}, underthesea F1 {theirs[-1]['f1']:.3f}", flush=True)

    def ms(values):
        return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"

    rows = []
    for name, results in ((f"project tiny model ({cv_epochs} epochs/fold)", ours), ("underthesea ner() 9.5", theirs)):
        row = [name, ms([r["f1"] for r in results]), ms([r["precision"] for r in results]), ms([r["recall"] for r in results])]
        row += [ms([r["per_type"].get(t, {}).get("f1-score", 0.0) for r in results]) for t in UNDERTHESEA_TYPES]
        rows.append(row)
    rows.append(["per-fold F1 (ours / underthesea)", " ".join(f"{r['f1']:.2f}" for r in ours),
                 " ".join(f"{r['f1']:.2f}" for r in theirs), "", "", "", ""])
    header = ["system", "micro F1", "precision", "recall", *(f"F1 {t}" for t in UNDERTHESEA_TYPES)]
    text = "\n".join([
        f"(i) leave-one-document-out on the 5 gold articles ({len(documents)} folds), PER/LOC/ORG only, "
        "strict spans, seqeval IOB2 on the evaluate_documents grid; mean ± population std",
        str(Table(header, rows))])
    return text, time.perf_counter() - started


# --------------------------------------------------------------------- (ii) throughput


def throughput_table(n_sentences: int, tiny_sentences: int, tiny_epochs: int, base_sentences: int,
                     base_epochs: int, dev_sentences: int, extra: list[str]) -> tuple[str, float]:
    from training.train.evaluate import score_spans
    from benchmarks.synthetic import write_corpus
    from training.data.readers import read_corpus
    from training.train.export import in_memory_model
    from training.train.loop import train_model

    started = time.perf_counter()
    paths = write_corpus(WORK / "synthetic", n_sentences, seed=0)
    train_all = read_corpus(paths["train"], "jsonl").documents
    dev_all = read_corpus(paths["dev"], "jsonl").documents
    labels = tuple(sorted({s.label for d in train_all for s in d.spans}))
    setups = [
        ("tiny (2 x 128)", [], tiny_sentences, tiny_epochs, "2.0e-3"),
        ("base geometry (12 x 768)", BASE_GEOMETRY, base_sentences, base_epochs, "3.0e-4"),
    ]
    rows = []
    for name, geometry, n_train, epochs, lr in setups:
        train_docs, dev_docs = train_all[:n_train], dev_all[:dev_sentences]
        results = {}
        for bf16 in (False, True):
            print(f"(ii) {name}, {'bf16' if bf16 else 'fp32'}: training {n_train} sentences x {epochs} epoch(s) ...",
                  flush=True)
            config = _config([*geometry, f"model.tiny.epochs={epochs}", f"model.tiny.learning_rate={lr}",
                              f"train.bf16={'true' if bf16 else 'false'}", "run_name=throughput", *extra])
            run_dir = WORK / "ckpt" / "throughput"
            shutil.rmtree(run_dir, ignore_errors=True)
            # no dev set during training: the timed loop is training only (no per-epoch eval)
            trained = train_model(config, train_docs, [], labels, run_dir, None)
            model = in_memory_model(config, labels, trained, run_dir)
            raws = [d.words for d in dev_docs]
            predicted = [[s for s, _ in scored] for scored in model.entity_spans(list(zip([d.text for d in dev_docs], raws)))]
            f1 = score_spans(dev_docs, raws, predicted).metrics["f1"]
            results[bf16] = (trained.train_tokens / max(trained.train_seconds, 1e-9), trained.train_seconds, f1, trained.bf16)
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"{name} {'bf16' if bf16 else 'fp32'}: {results[bf16][0]:.0f} tokens/s, "
                  f"{results[bf16][1]:.1f} s, dev F1 {f1:.3f}", flush=True)
        (t32, s32, f32, _), (t16, s16, f16, _) = results[False], results[True]
        rows.append([name, f"{n_train} x {epochs}", f"{t32:.0f}", f"{t16:.0f}", f"{t16 / t32:.2f}x",
                     f"{s32:.1f} / {s16:.1f}", f"{f32:.3f} / {f16:.3f}"])
    header = ["backbone", "train sents x epochs", "fp32 tok/s", "bf16 tok/s", "bf16/fp32",
              "train s fp32 / bf16", "dev F1 fp32 / bf16"]
    text = "\n".join([
        f"(ii) training throughput on a synthetic corpus ({n_sentences} sentences generated; dev: first "
        f"{dev_sentences} synthetic dev sentences), Trainer.train wall time incl. one checkpoint save per epoch",
        str(Table(header, rows))])
    return text, time.perf_counter() - started


def step_table(batch: int = 16, length: int = 64) -> tuple[str, float]:
    """(iii) isolated training steps (forward, backward, AdamW step; no data loading, no
    evaluation, no checkpoint), fp32 vs bf16 autocast, tiny and PhoBERT-base geometry."""
    import torch
    from transformers import RobertaConfig, RobertaForTokenClassification

    started = time.perf_counter()
    rows = []
    for name, hidden, layers, heads, inner, steps in (("tiny (2 x 128)", 128, 2, 4, 256, 20),
                                                      ("base geometry (12 x 768)", 768, 12, 12, 3072, 4)):
        config = RobertaConfig(vocab_size=3000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=inner, max_position_embeddings=258, pad_token_id=1,
                               type_vocab_size=1, num_labels=11)
        rates = {}
        for bf16 in (False, True):
            print(f"(iii) {name}, {'bf16' if bf16 else 'fp32'}: {steps} steps ...", flush=True)
            torch.manual_seed(0)
            model = RobertaForTokenClassification(config)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            ids, labels = torch.randint(5, 3000, (batch, length)), torch.randint(0, 11, (batch, length))

            def step():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(input_ids=ids, labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()

            step(), step()  # warm-up
            _, seconds = timed(lambda: [step() for _ in range(steps)])
            rates[bf16] = batch * length * steps / seconds
        rows.append([name, f"{batch} x {length}", f"{rates[False]:.0f}", f"{rates[True]:.0f}",
                     f"{rates[True] / rates[False]:.2f}x"])
    text = "\n".join([
        "(iii) isolated training steps (forward + backward + AdamW; no data loading, evaluation or checkpoints)",
        str(Table(["backbone", "batch x tokens", "fp32 tok/s", "bf16 tok/s", "bf16/fp32"], rows))])
    return text, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000, help="synthetic corpus size (train+dev+test)")
    parser.add_argument("--cv-epochs", type=int, default=6, help="tiny-model epochs per fold in (i)")
    parser.add_argument("--tiny-sentences", type=int, default=400)
    parser.add_argument("--tiny-epochs", type=int, default=2)
    parser.add_argument("--base-sentences", type=int, default=96)
    parser.add_argument("--base-epochs", type=int, default=1)
    parser.add_argument("--dev-sentences", type=int, default=100)
    parser.add_argument("--skip", choices=["accuracy", "throughput", "steps"], action="append", default=[],
                        help="skip a table (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    parts = []
    if "accuracy" not in args.skip:
        parts.append(accuracy_table(args.cv_epochs, args.set))
    if "throughput" not in args.skip:
        parts.append(throughput_table(args.sentences, args.tiny_sentences, args.tiny_epochs, args.base_sentences,
                                      args.base_epochs, args.dev_sentences, args.set))
    if "steps" not in args.skip:
        parts.append(step_table())
    print("\n" + machine())
    for text, seconds in parts:
        print(text)
        print(f"({seconds:.0f} s)\n")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
