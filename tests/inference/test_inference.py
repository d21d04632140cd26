"""predict(): raw text in, entities with exact offsets out, whatever the input."""

import json
import shutil
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, tiny_config
from training import Entity, ModelLoadError, load_model, predict
from training.text.documents import Span
from training.train.evaluate import score_spans

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir, precision="fp32")


def assert_exact(text, entities):
    previous_end = 0
    for entity in entities:
        assert isinstance(entity, Entity)
        assert text[entity.start:entity.end] == entity.text
        assert entity.text and entity.start >= previous_end
        assert 0.0 <= entity.score <= 1.0
        previous_end = entity.end


def test_gold_articles_map_back_exactly(model, gold):
    results = model.predict([doc.text for doc in gold.documents])
    assert len(results) == 5
    for doc, entities in zip(gold.documents, results):
        assert entities, doc.source
        assert_exact(doc.text, entities)


def test_predict_output_scores_like_the_training_evaluation(model, tiny_model_dir, tmp_path):
    """seqeval over predict() output on the test split == metrics.json of the training run."""
    from training.data.splits import load_splits

    splits = load_splits(tiny_config(tmp_path).data, 42)
    predicted = [[Span(e.start, e.end, e.label, e.text) for e in predict(doc.text, model=model)] for doc in splits.test]
    raws = [model.segmenter.segment(doc.text) for doc in splits.test]
    ours = score_spans(splits.test, raws, predicted).metrics
    recorded = json.loads((tiny_model_dir / "metrics.json").read_text())
    for key in ("precision", "recall", "f1", "macro_f1", "support"):
        assert ours[key] == pytest.approx(recorded[key]), key


def test_nfd_input_gives_the_same_entities_at_its_own_offsets(model, gold):
    text = gold.documents[1].text
    nfd = unicodedata.normalize("NFD", text)
    a, b = model.predict(text), model.predict(nfd)
    assert_exact(nfd, b)
    assert [(e.label, e.text) for e in a] == [(e.label, unicodedata.normalize("NFC", e.text)) for e in b]


@pytest.mark.parametrize("text", [
    "", "   \n\t ", "No Vietnamese at all, just English.", "😀🎉 ASEAN 𝕏 Việt Nam 👍🏽",
    "A\u200bSEAN Việt\u200d Nam\x00\x07\x1b[31m", "Dòng 1\r\nViệt Nam\r\n\r\nLào\r\n", "\u0301\u0301 a\u0300",
    "</s> <s> <mask> <pad> <unk> @@ _ __", "\ufeffViệt Nam", "\u2028Lào\u2029Campuchia\x85",
    "Việt Nam \ud800 Lào\udfff Campuchia",  # lone surrogates, as json.loads gives them
])
def test_hostile_text_never_breaks_offsets(model, text):
    assert_exact(text, model.predict(text))


INVISIBLE = {
    "zero-width space before spaces": lambda t: t.replace(" ", "\u200b "),
    "word joiner after spaces": lambda t: t.replace(" ", " \u2060"),
    "zero-width joiner inside a word": lambda t: t.replace("Việt", "Vi\u200dệt"),
    "byte-order mark inside a word": lambda t: t.replace("ASEAN", "AS\ufeffEAN"),
    "soft hyphen inside a word": lambda t: t.replace("Nam", "Na\u00adm"),
}


@pytest.mark.parametrize("name", list(INVISIBLE))
def test_invisible_characters_do_not_change_the_entities(model, gold, name):
    visible = lambda s: "".join(c for c in s if c not in "\u200b\u2060\u200d\ufeff\u00ad")  # noqa: E731
    texts = [doc.text for doc in gold.documents]
    changed = [INVISIBLE[name](text) for text in texts]
    for text, plain, hidden in zip(changed, model.predict(texts), model.predict(changed)):
        assert_exact(text, hidden)
        assert [(e.label, e.text) for e in plain] == [(e.label, visible(e.text)) for e in hidden]


def test_text_that_composes_across_characters_keeps_every_entity(model, gold):
    text = gold.documents[0].text
    expected = [(e.label, e.text) for e in model.predict(text)]
    for tail in (" " + unicodedata.normalize("NFD", "한국"), " a\u0f73\u0300"):
        found = model.predict(text + tail)
        assert_exact(text + tail, found)
        assert [(e.label, e.text) for e in found] == expected


def test_batch_arguments_of_the_wrong_type_are_named(model):
    with pytest.raises(TypeError, match="batch_size must be an int, not str"):
        model.predict("Việt Nam", batch_size="2")


def test_empty_and_blank_text_give_no_entities(model):
    assert model.predict("") == [] and model.predict(" \n ") == []
    assert model.predict([]) == []


@pytest.mark.parametrize("bad", [None, b"Vi\xe1\xbb\x87t Nam", 42, ["ok", None], {"Việt Nam": 1}, {"Lào", "Huế"}])
def test_non_text_input_is_a_type_error_naming_the_type(model, bad):
    with pytest.raises(TypeError, match="NoneType|bytes|int|dict|set"):
        model.predict(bad)


def test_long_text_is_windowed_and_covered_to_the_end(model):
    text = "Đoàn Việt Nam đến Lào " * 400  # one sentence of ~2,000 words, no punctuation
    entities = model.predict(text)
    assert_exact(text, entities)
    assert entities and entities[-1].end > len(text) - 40


def test_a_megabyte_of_text(model, gold):
    text = "\n".join(doc.text for doc in gold.documents)
    text = (text + "\r\n") * (1_000_000 // len(text) + 1)
    entities = model.predict(text)
    assert len(text) > 1_000_000 and len(entities) > 1000
    assert_exact(text, entities)


vietnamese = st.sampled_from(list("aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩị"
                                  "òóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ0123456789 .,;:!?()[]-/+\n\r\t“”…_@<>"))
odd = st.sampled_from(["\u0300", "\u0301", "\u0303", "\u0309", "\u0323", "\u200b", "\u200d", "\ufeff", "\x00",
                       "\x1b", "😀", "👍🏽", "𝕏", "\u2028", "\x85", "  ", "</s>", "<mask>"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(vietnamese, odd, st.text(max_size=3)), max_size=80).map("".join))
def test_property_predict_never_raises_and_offsets_are_exact(model, text):
    assert_exact(text, model.predict(text))


def test_one_call_predict_loads_the_model_once(tiny_model_dir):
    import training.inference.model as inference

    first = predict("Việt Nam và Lào", model=tiny_model_dir)
    loaded = dict(inference._LOADED)
    second = predict(["Việt Nam và Lào"], model=str(tiny_model_dir))
    assert second == [first] and inference._LOADED == loaded


def test_bf16_predictions_are_valid(tiny_model_dir, gold):
    text = gold.documents[0].text
    assert_exact(text, load_model(tiny_model_dir, precision="bf16").predict(text))


def test_incomplete_or_corrupted_model_directory(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="model.safetensors.*corrupted"):
        load_model(broken)
    (broken / "model.safetensors").unlink()
    (broken / "ner_config.json").unlink()
    (broken / "vocab.txt").unlink()
    with pytest.raises(ModelLoadError, match="missing model.safetensors, ner_config.json, vocab.txt"):
        load_model(broken)
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(tmp_path / "nowhere")


def test_inference_imports_no_training_only_packages(tiny_model_dir):
    code = (
        "import sys; from training import load_model, predict; "
        f"print(len(predict('Việt Nam', model={str(tiny_model_dir)!r}))); "
        "bad = [m for m in ('datasets', 'seqeval', 'label_studio_sdk') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_predict_command_writes_json_lines(tiny_model_dir, tmp_path):
    source = tmp_path / "article.txt"
    source.write_text("Thứ trưởng Đỗ Hùng Việt tại Viêng Chăn.\r\nĐoàn Việt Nam.\n", encoding="utf-8")
    run = lambda *args, **kw: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "training.predict", "--model", str(tiny_model_dir), *args],
        cwd=ROOT, capture_output=True, text=True, **kw)
    result = run(str(source))
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    text = open(source, encoding="utf-8", newline="").read()
    for entity in record["entities"]:
        assert text[entity["start"]:entity["end"]] == entity["text"]
    lines = [json.loads(line) for line in run("--lines", input="Việt Nam\nLào\n").stdout.splitlines()]
    assert [r["line"] for r in lines] == [1, 2] and lines[0]["source"] == "<stdin>"
    out = tmp_path / "entities.jsonl"
    assert run(str(source), "--output", str(out)).returncode == 0
    assert json.loads(out.read_text(encoding="utf-8"))["source"] == str(source)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    missing = run(str(source), "--model", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no such model directory" in missing.stderr


THREADS_SCRIPT = """
import json, sys, threading
from training import load_model
model = load_model(sys.argv[1])  # fresh process: underthesea has not loaded anything yet
texts = json.loads(sys.argv[2])
barrier = threading.Barrier(len(texts))
results, errors = [None] * len(texts), []

def work(i):
    barrier.wait()  # every thread makes the model's first call at the same moment
    try:
        results[i] = [e.to_dict() for e in model.predict(texts[i])]
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
for t in threads: t.start()
for t in threads: t.join()
sequential = [[e.to_dict() for e in model.predict(t)] for t in texts]
print(json.dumps({"errors": errors, "same": results == sequential}))
"""


def test_eight_threads_share_a_fresh_model_from_its_first_call(tiny_model_dir, gold):
    texts = [doc.text[i * 300:(i + 1) * 300] for doc in gold.documents[:2] for i in range(4)]
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", THREADS_SCRIPT, str(tiny_model_dir), json.dumps(texts)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
        assert outcome == {"errors": [], "same": True}


@pytest.mark.parametrize("flags,expected", [
    (["amx_bf16", "avx512_bf16"], "bf16"),
    (["avx512_bf16"], "bf16"),
    ([], "fp32"),  # AVX2 only: bf16 is emulated, slower than fp32
])
def test_auto_precision_follows_the_cpu_flags(flags, expected):
    import torch

    from training.inference.precision import choose_precision

    chosen = choose_precision("auto", torch.device("cpu"), cpu_flags=flags)
    assert chosen.name == expected and chosen.reason.startswith("auto: ")
    assert choose_precision("fp32", torch.device("cpu"), cpu_flags=flags).name == "fp32"
    assert choose_precision("bf16", torch.device("cpu"), cpu_flags=flags).name == "bf16"


def test_the_chosen_precision_is_visible(model):
    assert "precision='fp32 (asked for)'" in repr(model)


def test_int8_is_opt_in_cpu_only_and_keeps_offsets_exact(tiny_model_dir, gold):
    import torch

    from training.inference.precision import choose_precision

    assert choose_precision("auto", torch.device("cpu"), []).name == "fp32"  # never chosen by auto
    with pytest.raises(ValueError, match="CPU only"):
        choose_precision("int8", torch.device("cuda"))
    int8 = load_model(tiny_model_dir, precision="int8")
    assert "int8" in repr(int8)
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.tagger.encoder.modules())
    texts = [doc.text for doc in gold.documents]
    for text, entities in zip(texts, int8.predict(texts)):
        assert_exact(text, entities)
