"""A synthetic Vietnamese NER corpus in the public JSON-lines format, grown from the gold corpus.

Gold sentences (word-segmented with the project's segmenter through `document_sentences`)
serve as templates: every entity mention in a template is replaced by another mention of
the same type drawn from the pool of mentions of the source articles (kept as their
`_`-joined words with B-/I- tags), and numbers are perturbed (the digits of DATE mentions
and of numbers outside entities are redrawn). Source articles are split first, so test
sentences come from articles that train/dev never saw, neither as templates nor as
mentions: the test set is not trivially memorised.

    python -m benchmarks.synthetic --out DIR [--sentences 3000] [--seed 0] [--test-articles 1]

writes DIR/train.jsonl, DIR/dev.jsonl, DIR/test.jsonl (one `{"words", "tags", "source"}`
per line; `source` names the template article and is ignored by the readers).
Deterministic given the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from benchmarks.common import ROOT

GOLD = ROOT / "annotations" / "gold_export.json"
LABELING_CONFIG = ROOT / "annotations" / "labeling_config.xml"
_DIGITS = re.compile(r"\d+")


def read_gold(path: str | Path = GOLD):
    from training.data.readers import read_corpus
    from training.text.schema import read_labeling_config

    return read_corpus(path, schema=read_labeling_config(LABELING_CONFIG)).documents


def _runs(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first, last+1, label) of each entity in a valid IOB2 tag sequence."""
    from training.text.bio import repair_tags

    runs, current = [], None
    for i, tag in enumerate(repair_tags(tags)):
        if tag.startswith("I-") and current is not None:
            current[1] = i + 1
            continue
        if current is not None:
            runs.append(tuple(current))
            current = None
        if tag.startswith("B-"):
            current = [i, i + 1, tag[2:]]
    if current is not None:
        runs.append(tuple(current))
    return runs


def _redraw_number(match: re.Match, rng: random.Random) -> str:
    digits = match.group(0)
    value = int(digits)
    if len(digits) == 4 and 1900 <= value <= 2100:  # a year
        return str(rng.randint(1990, 2035))
    if len(digits) <= 2 and 1 <= value <= 31:  # a day or a month
        limit = 12 if value <= 12 else 28
        return str(rng.randint(1, limit)).zfill(len(digits))
    return "".join(str(rng.randint(1 if k == 0 and len(digits) > 1 else 0, 9)) for k in range(len(digits)))


def perturb_numbers(word: str, rng: random.Random) -> str:
    return _DIGITS.sub(lambda m: _redraw_number(m, rng), word)


def sentence_pool(documents, segmenter=None) -> list[tuple[str, list[str], list[str]]]:
    """(source, `_`-joined words, IOB2 tags) of every sentence of the documents."""
    from training.text.segmentation import get_segmenter
    from training.data.sentences import document_sentences

    from tqdm.auto import tqdm

    if segmenter is None and any(doc.words is None for doc in documents):
        segmenter = get_segmenter("underthesea")
    pool = []
    for doc in tqdm(documents, desc="segmenting sentences", unit="doc", delay=2.0, leave=False):
        for sentence in document_sentences(doc, segmenter):
            pool.append((doc.source or doc.id, sentence.surfaces(), list(sentence.tags)))
    return pool


def generate_from_pool(pool, n: int, seed: int, replace_p: float = 0.9,
                       number_p: float = 0.5) -> list[dict]:
    """`n` new sentences from the (source, words, tags) templates of `pool`, mentions
    swapped within the pool's own mentions of the same type."""
    rng = random.Random(seed)
    mentions: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for _, words, tags in pool:
        for first, last, label in _runs(tags):
            key = (label, tuple(words[first:last]))
            if key not in seen:
                seen.add(key)
                mentions[label].append(key[1])
    templates = [item for item in pool if any(t != "O" for t in item[2])] or list(pool)
    if not templates:
        return []
    out = []
    for _ in range(n):
        source, words, tags = rng.choice(templates)
        runs = {first: (last, label) for first, last, label in _runs(tags)}
        new_words: list[str] = []
        new_tags: list[str] = []
        i = 0
        while i < len(words):
            if i in runs:
                last, label = runs[i]
                mention = list(words[i:last])
                if rng.random() < replace_p and mentions[label]:
                    mention = list(rng.choice(mentions[label]))
                if label == "DATE" or rng.random() < 0.1:
                    mention = [perturb_numbers(w, rng) for w in mention]
                new_words += mention
                new_tags += [f"B-{label}"] + [f"I-{label}"] * (len(mention) - 1)
                i = last
                continue
            word = words[i]
            if _DIGITS.search(word) and rng.random() < number_p:
                word = perturb_numbers(word, rng)
            new_words.append(word)
            new_tags.append("O")
            i += 1
        out.append({"words": new_words, "tags": new_tags, "source": source})
    return out


def generate(documents, n: int, seed: int, segmenter=None) -> list[dict]:
    """`n` synthetic sentences `{"words", "tags", "source"}` from these documents only
    (templates and replacement mentions alike). Deterministic given the seed."""
    return generate_from_pool(sentence_pool(documents, segmenter), n, seed)


def split_articles(documents, seed: int, test_articles: int = 1):
    """(train/dev articles, test articles): seeded, disjoint."""
    order = sorted(documents, key=lambda d: d.source or d.id)
    random.Random(seed).shuffle(order)
    if not 0 < test_articles < len(order):
        raise ValueError(f"test_articles must be in 1..{len(order) - 1}")
    return order[test_articles:], order[:test_articles]


def build(documents, n: int, seed: int, test_articles: int = 1, dev_share: float = 0.1,
          test_share: float = 0.15, segmenter=None) -> dict[str, list[dict]]:
    """{"train", "dev", "test"}: train+dev from one set of articles, test from the others."""
    train_docs, test_docs = split_articles(documents, seed, test_articles)
    n_test = max(1, round(n * test_share))
    n_dev = max(1, round(n * dev_share))
    n_train = max(1, n - n_test - n_dev)
    train_dev = generate(train_docs, n_train + n_dev, seed, segmenter)
    test = generate(test_docs, n_test, seed + 1, segmenter)
    return {"train": train_dev[:n_train], "dev": train_dev[n_train:], "test": test}


def write_jsonl(path: Path, records: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_corpus(out: str | Path, n: int = 3000, seed: int = 0, test_articles: int = 1,
                 documents=None, segmenter=None) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"generating {n} synthetic sentences into {out} ...", flush=True)
    parts = build(documents if documents is not None else read_gold(), n, seed, test_articles, segmenter=segmenter)
    paths = {}
    for name, records in parts.items():
        paths[name] = out / f"{name}.jsonl"
        write_jsonl(paths[name], records)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--sentences", type=int, default=3000, help="total sentences (train+dev+test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-articles", type=int, default=1, help="source articles held out for test")
    args = parser.parse_args(argv)
    paths = write_corpus(args.out, args.sentences, args.seed, args.test_articles)
    for name, path in paths.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        sources = sorted({json.loads(l)["source"] for l in lines})
        print(f"{path}: {len(lines)} sentences from {', '.join(sources)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
