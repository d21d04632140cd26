"""A self-written Vietnamese news NER corpus, turned into the public JSON-lines format.

`benchmarks/corpus/*.txt` holds news sentences written for this project (none copied
from any article or corpus), one per line, in eighteen news domains (one file each:
health, epidemic, hospitals, diplomacy, world, government, courts, economy, agriculture,
tech, transport, maritime, travel, entertainment, sports, local, education, science),
with entities marked inline as `<TYPE>surface</TYPE>` following annotations/GUIDELINES.md.
Unlike `benchmarks.synthetic`, which recombines the five gold articles, it has the
lexical variety of real news (thousands of different names and places), so it is the
closest stand-in here for a public corpus such as PhoNER_COVID19: sentences are
shuffled and split at random (in-distribution dev and test), segmented by the project's
segmenter with gold boundaries winning, and written as `{"words", "tags", "source"}`.

    python -m benchmarks.written --out DIR [--seed 0] [--dev 0.2] [--test 0.3]

writes DIR/train.jsonl, DIR/dev.jsonl, DIR/test.jsonl; deterministic given the seed.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from benchmarks.common import ROOT
from benchmarks.synthetic import sentence_pool, write_jsonl

CORPUS = ROOT / "benchmarks" / "corpus"
_TAG = re.compile(r"<(/?)([A-Z]+)>")


def parse_marked(line: str, where: str):
    """`<PER>Lê Hùng</PER> đến <LOC>Huế</LOC>.` -> (text, [RawSpan]); ValueError names `where`."""
    from training.data.validation import RawSpan

    text, spans, position, opened = "", [], 0, None
    for match in _TAG.finditer(line):
        text += line[position:match.start()]
        position = match.end()
        closing, label = match.group(1) == "/", match.group(2)
        if closing != (opened is not None) or (closing and opened[0] != label):
            raise ValueError(f"{where}: unbalanced <{match.group(1)}{label}> in {line!r}")
        if closing:
            spans.append(RawSpan(opened[1], len(text), label, text[opened[1]:]))
            opened = None
        else:
            opened = (label, len(text))
    if opened is not None:
        raise ValueError(f"{where}: <{opened[0]}> is never closed in {line!r}")
    return text + line[position:], spans


def read_marked(paths) -> list:
    """Documents (one per sentence, `source` = the domain file), validated by the readers."""
    from training.data.validation import Problems, build_document, finish
    from training.text.schema import read_labeling_config

    labels = read_labeling_config(ROOT / "annotations" / "labeling_config.xml").labels
    from tqdm.auto import tqdm

    documents = []
    for path in tqdm(sorted(paths), desc="reading the marked files", unit="file", delay=2.0, leave=False):
        problems, in_file = Problems(path), []
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if line.strip():
                text, spans = parse_marked(line, f"{path}: line {number}")
                in_file.append(build_document(text, spans, task_id=f"line {number}", source=Path(path).stem,
                                              problems=problems, schema_labels=labels))
        documents += finish(in_file, problems).documents  # raises AnnotationError naming file, line, span
    return documents


def build(seed: int = 0, dev_share: float = 0.2, test_share: float = 0.3, paths=None) -> dict[str, list[dict]]:
    """{"train", "dev", "test"} of `{"words", "tags", "source"}` records, split at random."""
    documents = read_marked(paths if paths is not None else CORPUS.glob("*.txt"))
    print(f"{len(documents)} sentences read; segmenting them (gold boundaries win) ...", flush=True)
    records = [{"words": words, "tags": tags, "source": source} for source, words, tags in sentence_pool(documents)]
    random.Random(seed).shuffle(records)
    n_test, n_dev = round(len(records) * test_share), round(len(records) * dev_share)
    return {"train": records[n_test + n_dev:], "dev": records[n_test:n_test + n_dev], "test": records[:n_test]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.written", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev", type=float, default=0.2, help="share of sentences for dev")
    parser.add_argument("--test", type=float, default=0.3, help="share of sentences for test")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in build(args.seed, args.dev, args.test).items():
        write_jsonl(out / f"{name}.jsonl", records)
        entities = sum(t.startswith("B-") for r in records for t in r["tags"])
        print(f"{out / f'{name}.jsonl'}: {len(records)} sentences, {entities} entities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
