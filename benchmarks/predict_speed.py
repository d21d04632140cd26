"""predict() against the strongest alternatives on this machine, one process, one table.

Same exported model, same texts (the five articles x `--copies`), in one run:

* the Hugging Face `pipeline("token-classification")` on the word-segmented sentences,
  with the model in fp32, int8 (dynamic, linear layers) and bf16, each at batch 1 and batched: what a
  knowledgeable user would try instead, every configuration of it;
* the raw encoder forward (no tokenisation, segmentation or decoding) on exactly the
  padded batches predict() runs (grouped by `length_batches` with its defaults), in
  fp32, int8 and bf16: the ceiling predict() can approach;
* `load_model(dir)` with its defaults (`precision="auto"`), and explicitly fp32, int8 (opt-in)
  and bf16, with int8's and bf16's entity agreement with fp32;
* underthesea's `ner()`, the offline Vietnamese NER a user would otherwise pick
  (its own word segmentation, POS, chunking and CRF; PER/LOC/ORG only).

predict() times include NFC normalisation and word segmentation; the pipeline is handed
pre-segmented text. The goals printed under the table: the default >= 2x the best
pipeline configuration, >= 90% of the raw forward in the precision it chose, >= 0.85 of
the faster of its own fp32 and bf16, and bf16's entities >= 99.5% equal to fp32's.

    python -m benchmarks.predict_speed [--model DIR] [--copies 4] [--repeat 2]

Without --model it trains (once, cached in build/bench) a PhoBERT-base-geometry model.
On a CPU without hardware bf16 the bf16 rows are slow (emulated): `--fp32-only` skips
them, `--copies 1` keeps the run short.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable

from benchmarks.common import article_texts, base_sized_model, encoder_passes, machine
from training.common.tables import Table


def entity_agreement(reference, other) -> tuple[int, int, int]:
    """(identical, reference total, union) over (start, end, label) per text."""
    key = lambda e: (e.start, e.end, e.label)  # noqa: E731
    same = sum(len({key(e) for e in a} & {key(e) for e in b}) for a, b in zip(reference, other))
    union = sum(len({key(e) for e in a} | {key(e) for e in b}) for a, b in zip(reference, other))
    return same, sum(len(a) for a in reference), union


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported model dir (default: the base-geometry benchmark model)")
    parser.add_argument("--copies", type=int, default=4, help="copies of the five articles to tag")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each row reports its best")
    parser.add_argument("--pipeline-batches", default="1,8,32", help="the pipeline's batch sizes, comma-separated")
    parser.add_argument("--fp32-only", action="store_true",
                        help="skip the bf16 rows where the default is fp32 (a CPU without hardware bf16, where they "
                             "are several times slower); the precision and agreement goals are then not judged")
    args = parser.parse_args()

    import torch
    from transformers import pipeline
    from underthesea import ner as underthesea_ner

    from training import load_model

    model_dir = args.model or base_sized_model()
    texts = article_texts(args.copies)
    default = load_model(model_dir)
    fp32 = load_model(model_dir, precision="fp32")
    if args.fp32_only and default.precision.name != "fp32":
        parser.error(f"--fp32-only: the default here is {default.precision}, so the bf16 rows are the ones that matter")
    models = {"default": default, "fp32": fp32, "int8": load_model(model_dir, precision="int8")}
    if not args.fp32_only:
        models["bf16"] = load_model(model_dir, precision="bf16")

    passes = encoder_passes(fp32, texts)
    windows, tokens, batches = passes.windows, passes.tokens, passes.batches
    sentences = [" ".join(words) for words in windows]  # the pipeline gets the same word lists

    def raw_forward(encoder):
        with torch.inference_mode():
            for batch in batches:
                encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    padded = sum(b["input_ids"].numel() for b in batches)
    print(machine())
    print(f"model: {model_dir} ({sum(p.numel() for p in fp32.tagger.encoder.parameters()) / 1e6:.1f}M parameters, "
          f"attention: {fp32.tagger.encoder.config._attn_implementation}); {len(texts)} texts, "
          f"{len(windows)} sentences, {tokens} PhoBERT tokens ({padded} padded, in {len(batches)} passes); "
          f"best of {args.repeat} rounds, each timing every method once\ndefault: {default!r}\n", flush=True)

    # int8 everywhere it applies, so that predict()'s int8 is compared with an int8 pipeline
    encoders = {"fp32": fp32.tagger.encoder, "int8": models["int8"].tagger.encoder}
    if not args.fp32_only:
        encoders["bf16"] = copy.deepcopy(fp32.tagger.encoder).to(torch.bfloat16)
    methods: dict[str, Callable[[], object]] = {}
    for dtype, encoder in encoders.items():
        hf = pipeline("token-classification", model=encoder, tokenizer=fp32.tokenizer, device=-1)
        for size in [int(size) for size in args.pipeline_batches.split(",")]:
            methods[f"HF pipeline, model {dtype}, batch {size}"] = lambda hf=hf, size=size: hf(sentences, batch_size=size)
    for dtype, encoder in encoders.items():
        methods[f"raw encoder forward {dtype} (ceiling)"] = lambda encoder=encoder: raw_forward(encoder)
    predict_rows = {name: f"predict() {name}" + (f" ({model.precision.name})" if name == "default" else "")
                    for name, model in models.items()}
    for name, model in models.items():
        methods[predict_rows[name]] = lambda model=model: model.predict(texts)
    methods["underthesea ner() (own segmentation, PER/LOC/ORG)"] = lambda: [underthesea_ner(t) for t in texts]

    # round-robin: every round times each method once, so a change of load on a shared
    # machine affects all rows alike instead of the rows that happened to run during it
    best = dict.fromkeys(methods, float("inf"))
    outputs = {}
    with torch.inference_mode():
        for name, fn in methods.items():
            outputs[name] = fn()  # warm-up: first-call allocations and lazy initialisation
        for round_number in range(1, args.repeat + 1):
            for name, fn in methods.items():
                started = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - started)
            print(f"  round {round_number}/{args.repeat}: " + ", ".join(f"{s:.2f}" for s in best.values()),
                  file=sys.stderr, flush=True)
    rows = list(best.items())
    ours = {name: outputs[row] for name, row in predict_rows.items()}
    seconds = dict(rows)
    best_pipeline = min(s for name, s in rows if name.startswith("HF pipeline"))
    print(Table(["method", "seconds", "texts/s", "tokens/s", "x best pipeline"],
                [[name, s, len(texts) / s, tokens / s, best_pipeline / s] for name, s in rows]))

    t_default = seconds[predict_rows["default"]]
    t_raw = seconds[f"raw encoder forward {default.precision.name} (ceiling)"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"
    goals = [f"default >= 2x best pipeline: {best_pipeline / t_default:.2f}x {verdict(best_pipeline >= 2 * t_default)}",
             f"default >= 90% of raw {default.precision.name} forward: {100 * t_raw / t_default:.0f}% "
             f"{verdict(t_raw >= 0.9 * t_default)}"]
    same, total, union = entity_agreement(ours["fp32"], ours["int8"])
    print(f"\nint8 vs fp32: {same}/{total} of fp32's entities identical in int8; agreement over the union "
          f"{100 * same / max(union, 1):.2f}%")
    if "bf16" in ours:
        t_fastest = min(seconds["predict() fp32"], seconds["predict() bf16"])
        same, total, union = entity_agreement(ours["fp32"], ours["bf16"])
        agreement = same / max(union, 1)
        print(f"\nbf16 vs fp32: {same}/{total} of fp32's entities identical in bf16; agreement over the union "
              f"{100 * agreement:.2f}%")
        goals += [f"default >= 0.85 of the faster precision: {t_fastest / t_default:.2f} "
                  f"{verdict(t_fastest >= 0.85 * t_default)}", f"agreement >= 99.5%: {verdict(agreement >= 0.995)}"]
    else:
        goals.append("precision and agreement goals: not judged (--fp32-only)")
    print("\ngoals: " + "; ".join(goals))


if __name__ == "__main__":
    main()
