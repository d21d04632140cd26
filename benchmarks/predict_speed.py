"""predict() throughput against the Hugging Face pipeline, fp32 vs bf16, one process.

Same exported model, same texts: (a) `pipeline("token-classification")` used the
straightforward way on word-segmented sentences, (b) predict() in fp32, (c) predict()
in bf16; texts/s, tokens/s, ratios, and the share of (b)'s entities that (c) returns
identically (text, label, offsets). predict() times include NFC normalisation and
word segmentation; the pipeline is handed pre-segmented text.

    python -m benchmarks.predict_speed [--model DIR] [--copies 4]

Without --model it trains (once, cached in build/bench) a PhoBERT-base-geometry model.
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import ROOT, base_sized_model, machine, timed
from training.common.tables import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported model dir (default: the base-geometry benchmark model)")
    parser.add_argument("--copies", type=int, default=4, help="copies of the five articles to tag")
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings")
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from training import load_model
    from training.text.segmentation import word_surface
    from training.model.encoding import fit_windows

    model_dir = args.model or base_sized_model()
    texts = [t["data"]["text"] for t in json.loads((ROOT / "annotations" / "tasks.json").read_text())] * args.copies
    fp32 = load_model(model_dir, precision="fp32")
    bf16 = load_model(model_dir, precision="bf16")

    sentences = [" ".join(word_surface(text, w) for w in words)
                 for text in texts for words in fp32.segmenter.segment(text)]
    windows = []
    for text in texts:
        for words in fp32.segmenter.segment(text):
            surfaces = [word_surface(text, w) for w in words]
            windows += [surfaces[a:b] for a, b in fit_windows(fp32.pieces, surfaces, fp32.max_length)]
    tokens = sum(len(w) + sum(fp32.pieces.count(s) - 1 for s in w) + 2 for w in windows)

    hf = pipeline("token-classification", model=fp32.tagger.encoder, tokenizer=fp32.tokenizer, device=-1)
    with torch.inference_mode():
        hf(sentences[:2])  # warm-up
        _, t_pipe = timed(lambda: hf(sentences), args.repeat)
    fp32.predict(texts[:1])
    ours32, t_32 = timed(lambda: fp32.predict(texts), args.repeat)
    bf16.predict(texts[:1])
    ours16, t_16 = timed(lambda: bf16.predict(texts), args.repeat)

    key = lambda e: (e.start, e.end, e.label)  # noqa: E731
    same = sum(len({key(e) for e in a} & {key(e) for e in b}) for a, b in zip(ours32, ours16))
    total = sum(len(a) for a in ours32)
    union = sum(len({key(e) for e in a} | {key(e) for e in b}) for a, b in zip(ours32, ours16))

    print(machine())
    print(f"model: {model_dir} ({sum(p.numel() for p in fp32.tagger.encoder.parameters()) / 1e6:.1f}M parameters); "
          f"{len(texts)} texts, {len(sentences)} sentences, {tokens} PhoBERT tokens\n")
    rows = []
    for name, seconds in (("(a) HF pipeline, fp32", t_pipe), ("(b) predict() fp32", t_32), ("(c) predict() bf16", t_16)):
        rows.append([name, seconds, len(texts) / seconds, tokens / seconds, t_pipe / seconds])
    print(Table(["method", "seconds", "texts/s", "tokens/s", "x (a)"], rows))
    print(f"\n(c) vs (b): {same}/{total} of fp32 entities identical in bf16 "
          f"({100 * same / max(total, 1):.2f}%); agreement over the union {100 * same / max(union, 1):.2f}%")
    print(f"goals: (c) >= 5x (a): {'met' if t_pipe / t_16 >= 5 else 'NOT met'}; "
          f"agreement >= 99.5%: {'met' if same / max(union, 1) >= 0.995 else 'NOT met'}; "
          f"(b) no slower than (a): {'met' if t_32 <= t_pipe else 'NOT met'}")


if __name__ == "__main__":
    main()
