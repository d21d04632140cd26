"""The project's model against a feature CRF (sklearn-crfsuite), same documents, same splits,
same scoring.

Both sides read the data through the project's config and readers (`load_splits`, or the
`leave_one_out` folds that `--cv` uses). The CRF is trained on the training documents'
sentences as the project builds them (`document_sentences` with the config's segmenter,
or the given words of CoNLL/JSON lines); it tags each evaluation document the way
predict() does (raw segmentation, no gold boundaries), and is scored like
`evaluate_documents`: gold and predicted spans on one word grid, seqeval strict IOB2.
The dev documents are used by the project's model for early stopping only; the CRF
does not use them.

    python -m benchmarks.crf_baseline --config configs/tiny.yaml [--set KEY=VALUE ...] [--cv]

`--set` overrides go to both sides (e.g. `--set model.head=crf` selects the project's
CRF head). Models and checkpoints go under build/bench/crf_baseline unless overridden.
"""

from __future__ import annotations

import argparse
import statistics
import time
import unicodedata
from typing import Sequence

from benchmarks.common import BUILD, ROOT, machine
from training.common.tables import Table

# ---------------------------------------------------------------------------- features


def word_shape(word: str) -> str:
    """Xx-style shape with repeats collapsed: `Hà_Nội` -> `Xx_Xx`, `07/10/2024` -> `d/d/d`."""
    out = []
    for char in word:
        if char.isdigit():
            code = "d"
        elif char.isalpha():
            code = "X" if char.isupper() else "x"
        elif char == "_":
            code = "_"
        else:
            code = char if unicodedata.category(char).startswith("P") or char in "+-/%." else "#"
        if not out or out[-1] != code:
            out.append(code)
    return "".join(out)


def _word_features(word: str, prefix: str) -> dict:
    syllables = word.split("_")
    lower = word.lower()
    features = {
        f"{prefix}word": word,
        f"{prefix}lower": lower,
        f"{prefix}shape": word_shape(word),
        f"{prefix}istitle": all(s[:1].isupper() for s in syllables if s),
        f"{prefix}isupper": word.isupper(),
        f"{prefix}isdigit": word.replace("_", "").isdigit(),
        f"{prefix}hasdigit": any(c.isdigit() for c in word),
        f"{prefix}ispunct": all(not c.isalnum() for c in word),
        f"{prefix}nsyll": min(len(syllables), 5),
    }
    return features


def sentence_features(words: Sequence[str]) -> list[dict]:
    """crfsuite features for a sentence of `_`-joined words."""
    base = [_word_features(w, "") for w in words]
    result = []
    n = len(words)
    for i, word in enumerate(words):
        feats = {"bias": 1.0, **base[i]}
        lower = word.lower()
        syllables = lower.split("_")
        for syllable in syllables:
            feats[f"syll={syllable}"] = 1.0
        feats["first_syll"] = syllables[0]
        feats["last_syll"] = syllables[-1]
        for k in (1, 2, 3):
            feats[f"prefix{k}"] = lower[:k]
            feats[f"suffix{k}"] = lower[-k:]
        for offset in (-2, -1, 1, 2):
            j = i + offset
            if 0 <= j < n:
                other = base[j]
                for key in ("word", "lower", "shape", "istitle", "isupper", "isdigit"):
                    feats[f"{offset:+d}:{key}"] = other[key]
            else:
                feats[f"{offset:+d}:{'BOS' if j < 0 else 'EOS'}"] = True
        if i == 0:
            feats["BOS"] = True
        if i == n - 1:
            feats["EOS"] = True
        if i > 0:
            feats["-1:lower|lower"] = f"{words[i - 1].lower()}|{lower}"
        if i < n - 1:
            feats["lower|+1:lower"] = f"{lower}|{words[i + 1].lower()}"
        result.append(feats)
    return result


# ----------------------------------------------------------------------------- the CRF


class CrfTagger:
    def __init__(self, c1: float = 0.05, c2: float = 0.05, max_iterations: int = 150):
        import sklearn_crfsuite

        self.crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=max_iterations,
                                        all_possible_transitions=True)
        self.train_seconds = 0.0

    def fit(self, sentences: Sequence[tuple[Sequence[str], Sequence[str]]]) -> "CrfTagger":
        print(f"feature CRF (sklearn-crfsuite): training on {len(sentences)} sentences, at most "
              f"{self.crf.max_iterations} L-BFGS iterations ...", flush=True)
        started = time.perf_counter()
        self.crf.fit([sentence_features(w) for w, _ in sentences], [list(t) for _, t in sentences])
        self.train_seconds = time.perf_counter() - started
        print(f"feature CRF trained in {self.train_seconds:.1f} s", flush=True)
        return self

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        if not sentences:
            return []
        return [list(t) for t in self.crf.predict([sentence_features(w) for w in sentences])]


def labelled_sentences(documents, segmenter) -> list[tuple[list[str], list[str]]]:
    """(words, tags) of the documents' sentences, built as the project builds them."""
    from tqdm.auto import tqdm

    from training.data.sentences import document_sentences

    progress = tqdm(documents, desc="segmenting", unit="doc", delay=2.0, leave=False)
    return [(s.surfaces(), list(s.tags)) for doc in progress for s in document_sentences(doc, segmenter)]


def raw_sentences(doc, segmenter):
    """The word ranges predict() would tag: the given words, or the segmenter's."""
    return doc.words if doc.words is not None else segmenter.segment(doc.text)


def crf_spans(tagger: CrfTagger, documents, segmenter) -> list[tuple[list, list]]:
    """Per document: (raw sentences, predicted spans)."""
    from training.text.bio import tags_to_spans
    from training.text.segmentation import word_surface

    from tqdm.auto import tqdm

    out = []
    for doc in tqdm(documents, desc="feature CRF tagging", unit="doc", delay=2.0, leave=False):
        raw = [list(words) for words in raw_sentences(doc, segmenter) if words]
        tagged = tagger.tag([[word_surface(doc.text, w) for w in words] for words in raw])
        spans = [span for words, tags in zip(raw, tagged) for span in tags_to_spans(words, tags, doc.text)]
        out.append((raw, spans))
    return out


# ----------------------------------------------------------------------------- scoring


def train_and_score_crf(train_docs, test_docs, segmenter, labels: Sequence[str] | None = None) -> dict:
    from training.train.evaluate import score_spans

    tagger = CrfTagger().fit(labelled_sentences(train_docs, segmenter))
    tagged = crf_spans(tagger, test_docs, segmenter)
    metrics = score_spans(test_docs, [r for r, _ in tagged], [s for _, s in tagged], labels).metrics
    metrics["train_seconds"] = tagger.train_seconds
    return metrics


# ------------------------------------------------------------------------------- report


def _fmt(values: Sequence[float], digits: int = 3) -> str:
    values = [float(v) for v in values if v == v]  # NaN: not reported by that system
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.pstdev(values):.{digits}f}"


def comparison_rows(labels: Sequence[str], ours: list[dict], crf: list[dict]) -> list[list]:
    """Rows: micro P/R/F1, macro F1, per-type F1, train seconds; each cell the value or
    mean ± std over folds."""
    def column(results, getter):
        return _fmt([getter(r) for r in results])

    rows = []
    for key in ("f1", "precision", "recall", "macro_f1"):
        name = "micro F1" if key == "f1" else ("macro F1" if key == "macro_f1" else f"micro {key}")
        rows.append([name, column(ours, lambda r: r.get(key, float("nan"))), column(crf, lambda r: r[key])])
    for label in labels:
        get = lambda r: r["per_type"].get(label, {}).get("f1-score", 0.0)  # noqa: E731
        support = crf[0]["per_type"].get(label, {}).get("support", 0) if len(crf) == 1 else sum(
            r["per_type"].get(label, {}).get("support", 0) for r in crf)
        rows.append([f"F1 {label} (n={support})", column(ours, get), column(crf, get)])
    rows.append(["train seconds", _fmt([r["train_seconds"] for r in ours], 1), _fmt([r["train_seconds"] for r in crf], 1)])
    return rows


def run(config_path: str, overrides: list[str], cv: bool) -> str:
    import json

    from training.train.config import load_config
    from training.data.splits import leave_one_out, load_splits
    from training.train.pipeline import run_cv, run_once
    from training.text.segmentation import get_segmenter

    defaults = [f"output.dir={BUILD / 'crf_baseline' / 'models'}", f"output.checkpoints={BUILD / 'crf_baseline' / 'ckpt'}"]
    config = load_config(config_path, [*defaults, *overrides])
    splits = load_splits(config.data, config.seed)
    segmenter = get_segmenter(config.segmenter.name, **config.segmenter.settings)
    if cv:
        print("project model: leave-one-document-out folds ...", flush=True)
        summary = run_cv(config)
        ours = summary["folds"]
        documents = [*splits.train, *splits.dev, *splits.test]
        crf = []
        for index, (train, _dev, test) in enumerate(leave_one_out(documents, config.seed)):
            print(f"feature CRF, fold {index + 1} of {len(documents)} ...", flush=True)
            crf.append(train_and_score_crf(train, test, segmenter))
        title = f"leave-one-document-out, {len(ours)} folds (mean ± std, population std)"
    else:
        print(f"project model: training on {len(splits.train)} document(s) ...", flush=True)
        model_dir = run_once(config, resume=False)
        ours = [json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))]
        test = splits.test or splits.dev
        crf = [train_and_score_crf(splits.train, test, segmenter)]
        title = (f"{len(splits.train)} train / {len(splits.dev)} dev / {len(splits.test)} test document(s); "
                 f"scored on the {'test' if splits.test else 'dev'} split")
    head = getattr(config.model, "head", "softmax")
    lines = [machine(),
             f"config: {config_path} {' '.join(overrides)}".rstrip(),
             f"{title}; seqeval strict IOB2 on the evaluate_documents word grid",
             str(Table(["metric", f"project model ({config.model.name_or_path}, head={head})", "CRF (sklearn-crfsuite)"],
                       comparison_rows(splits.labels, ours, crf)))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for both sides (repeatable)")
    parser.add_argument("--cv", action="store_true", help="leave-one-document-out folds")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    output = run(args.config, args.set, args.cv)
    print("\n" + output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
