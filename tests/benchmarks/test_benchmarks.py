"""Fast checks of the benchmark helpers: synthetic corpus, CRF baseline, underthesea alignment."""

import json

import pytest

from training.text.bio import is_valid_iob2


@pytest.fixture(scope="module")
def pool(gold, segmenter):
    from benchmarks.synthetic import sentence_pool

    return sentence_pool(gold.documents, segmenter)


def test_synthetic_generation_is_deterministic(gold, segmenter, pool):
    from benchmarks.synthetic import generate, generate_from_pool

    first = generate_from_pool(pool, 50, seed=3)
    assert first == generate_from_pool(pool, 50, seed=3)
    assert first != generate_from_pool(pool, 50, seed=4)
    assert generate(gold.documents[:1], 5, seed=1, segmenter=segmenter) == generate(
        gold.documents[:1], 5, seed=1, segmenter=segmenter)


def test_synthetic_sentences_are_valid_iob2_with_mentions_from_their_pool(pool):
    from benchmarks.synthetic import _runs, generate_from_pool

    records = generate_from_pool(pool, 200, seed=0)
    known = {(label, tuple(words[a:b])) for _, words, tags in pool for a, b, label in _runs(tags)}
    assert len(records) == 200
    for record in records:
        assert len(record["words"]) == len(record["tags"]) > 0
        assert is_valid_iob2(record["tags"])
        assert all(w and w == w.strip() and " " not in w for w in record["words"])
        for a, b, label in _runs(record["tags"]):
            assert label in {"ORG", "PER", "LOC", "EVENT", "DATE"}
            if label != "DATE":  # DATE digits are perturbed
                mention = tuple(record["words"][a:b])
                assert (label, mention) in known or any(ch.isdigit() for w in mention for ch in w)


def test_synthetic_corpus_files_read_back_and_test_articles_are_disjoint(gold, segmenter, tmp_path):
    from benchmarks.synthetic import write_corpus
    from training.data.readers import read_corpus

    paths = write_corpus(tmp_path, 120, seed=0, documents=gold.documents, segmenter=segmenter)
    sources = {}
    for name in ("train", "dev", "test"):
        lines = paths[name].read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert records and all(is_valid_iob2(r["tags"]) for r in records)
        sources[name] = {r["source"] for r in records}
        corpus = read_corpus(paths[name], "jsonl")
        assert len(corpus.documents) == len(records)
        assert not corpus.warnings
        assert sum(len(d.spans) for d in corpus.documents) > 0
    assert not sources["test"] & (sources["train"] | sources["dev"])
    assert len(sources["test"]) == 1
    again = write_corpus(tmp_path / "again", 120, seed=0, documents=gold.documents, segmenter=segmenter)
    assert all(paths[n].read_bytes() == again[n].read_bytes() for n in paths)


def test_crf_features_and_shapes():
    from benchmarks.crf_baseline import sentence_features, word_shape

    assert word_shape("Hà_Nội") == "Xx_Xx"
    assert word_shape("07/10/2024") == "d/d/d"
    assert word_shape("ASEAN") == "X"
    features = sentence_features(["Ông", "Nguyễn_Văn_A", "đến", "Hà_Nội", "."])
    assert len(features) == 5
    assert features[0]["BOS"] and features[-1]["EOS"]
    assert features[1]["syll=văn"] == 1.0 and features[1]["istitle"]
    assert features[1]["-1:lower"] == "ông" and features[1]["+2:word"] == "Hà_Nội"
    assert features[0]["-2:BOS"] and features[4]["+1:EOS"]


def test_score_spans_matches_exact_span_matching():
    from training.text.documents import Document, Span
    from training.train.evaluate import score_spans

    text = "Ông Nguyễn Văn A đến Hà Nội ."
    doc = Document("d", text, [Span(4, 16, "PER", "Nguyễn Văn A"), Span(21, 27, "LOC", "Hà Nội")])
    raw = [[(0, 3), (4, 10), (11, 14), (15, 16), (17, 20), (21, 23), (24, 27), (28, 29)]]
    assert score_spans([doc], [raw], [doc.spans]).metrics["f1"] == 1.0
    half = score_spans([doc], [raw], [[Span(4, 14, "PER"), Span(21, 27, "LOC")]]).metrics
    assert half["precision"] == 0.5 and half["recall"] == 0.5
    only_loc = score_spans([doc], [raw], [[Span(21, 27, "LOC")]], labels=("LOC",)).metrics
    assert only_loc["f1"] == 1.0


def test_crf_learns_the_gold_corpus(gold, segmenter):
    from benchmarks.crf_baseline import train_and_score_crf

    metrics = train_and_score_crf(gold.documents, gold.documents, segmenter)
    assert metrics["f1"] > 0.5


def test_underthesea_alignment_gives_exact_offsets(gold):
    from benchmarks.train_benchmark import tagged_to_spans, underthesea_spans
    from training.text.segmentation import align_pieces

    text = "Ông  Nguyễn Văn\nA đến Hà Nội."
    ranges = align_pieces(text, ["Ông", "Nguyễn Văn A", "đến", "Hà Nội", "."], lenient=True)
    assert [text[a:b] for a, b in ranges] == ["Ông", "Nguyễn Văn\nA", "đến", "Hà Nội", "."]
    # a token underthesea rewrote is skipped without derailing the rest
    assert align_pieces("a b c", ["a", "X", "c"], lenient=True) == [(0, 1), None, (4, 5)]
    assert align_pieces("a b c", ["a", "X", "c"]) is None
    spans = tagged_to_spans(text, ["Ông", "Nguyễn Văn A", "đến", "Hà Nội", "."],
                            ["O", "B-PER", "O", "B-LOC", "O"])
    assert [(s.label, text[s.start:s.end]) for s in spans] == [("PER", "Nguyễn Văn\nA"), ("LOC", "Hà Nội")]
    assert tagged_to_spans("x Y", ["x", "Y"], ["O", "B-MISC"]) == []
    document = gold.documents[0]
    found = underthesea_spans(document.text[:600])
    assert found
    for span in found:
        assert document.text[span.start:span.end] == span.text
        assert span.label in ("PER", "LOC", "ORG")


def test_written_corpus_markup_gives_exact_spans_and_names_bad_lines(tmp_path):
    from benchmarks.written import parse_marked, read_marked

    text, spans = parse_marked("Ông <PER>Lê Văn Hùng</PER> đến <LOC>Huế</LOC> <DATE>ngày 3/5</DATE>.", "x")
    assert text == "Ông Lê Văn Hùng đến Huế ngày 3/5."
    assert [(text[s.start:s.end], s.label) for s in spans] == [("Lê Văn Hùng", "PER"), ("Huế", "LOC"),
                                                               ("ngày 3/5", "DATE")]
    for bad in ("<PER>Lê <LOC>Huế</LOC></PER>", "<PER>Lê</LOC>", "<PER>Lê", "Lê</PER>"):
        with pytest.raises(ValueError, match="x"):
            parse_marked(bad, "x")
    marked = tmp_path / "news.txt"
    marked.write_text("<ORG>Bộ Y tế</ORG> họp.\n\n<XYZ>Huế</XYZ> mưa.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"news.txt: task line 3.*'XYZ'"):
        read_marked([marked])


def test_written_corpus_splits_are_disjoint_valid_and_deterministic():
    from benchmarks.written import CORPUS, build

    paths = sorted(CORPUS.glob("*.txt"))[:1]
    parts = build(seed=0, paths=paths)
    assert parts == build(seed=0, paths=paths)
    assert parts["train"] != build(seed=1, paths=paths)["train"]
    keys = {name: {tuple(r["words"]) for r in records} for name, records in parts.items()}
    assert len(parts["test"]) > 50 and len(parts["dev"]) > 30
    assert sum(len(r) for r in parts.values()) >= 500
    for records in parts.values():
        assert all(is_valid_iob2(r["tags"]) and len(r["words"]) == len(r["tags"]) for r in records)
    assert sum(t.startswith("B-") for r in parts["test"] for t in r["tags"]) > 50
    assert len(keys["test"] & keys["train"]) <= 1  # sentences are unique, save a rare repeated caption


@pytest.mark.slow
def test_predict_speed_prints_every_row_and_the_goals(tiny_model_dir):
    """The benchmark runs end to end on the tiny model: every anchor row, the CPU line, the verdicts."""
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "benchmarks.predict_speed", "--model", str(tiny_model_dir),
                           "--copies", "1", "--repeat", "1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.startswith("CPU: ") and "flags:" in out.splitlines()[0]
    for row in ("HF pipeline, model fp32, batch 1", "HF pipeline, model fp32, batch 32",
                "HF pipeline, model bf16, batch 1", "HF pipeline, model bf16, batch 32",
                "raw encoder forward fp32", "raw encoder forward bf16", "predict() default (",
                "predict() fp32", "predict() bf16", "HF pipeline, model int8, batch 1", "raw encoder forward int8",
                "predict() int8", "underthesea ner()"):
        assert row in out, f"row {row!r} missing:\n{out}"
    assert "goals: default >= 2x best pipeline" in out and "agreement >= 99.5%" in out


@pytest.mark.slow
def test_predict_speed_fp32_only_skips_bf16_only_where_the_default_is_fp32(tiny_model_dir):
    import subprocess
    import sys

    import torch

    from conftest import ROOT
    from training.inference.precision import choose_precision

    done = subprocess.run([sys.executable, "-m", "benchmarks.predict_speed", "--model", str(tiny_model_dir),
                           "--copies", "1", "--repeat", "1", "--pipeline-batches", "1", "--fp32-only"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if choose_precision("auto", torch.device("cpu")).name == "fp32":
        assert done.returncode == 0, done.stderr[-3000:]
        rows = [line for line in done.stdout.splitlines() if line.startswith(("HF pipeline", "raw ", "predict()"))]
        # pipeline, raw forward, predict() in fp32 and int8; predict() default
        assert len(rows) == 7 and not [row for row in rows if "bf16" in row], rows
        assert sum("int8" in row for row in rows) == 3 and "int8 vs fp32:" in done.stdout
        assert "not judged (--fp32-only)" in done.stdout
    else:  # bf16 is the default here: skipping its rows would hide the figures that matter
        assert done.returncode == 2 and "--fp32-only" in done.stderr
