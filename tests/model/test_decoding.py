"""Decoding never yields an invalid IOB2 sequence, for either head; the CRF is exact."""

import itertools
import json

import pytest
import torch

from conftest import tiny_config
from training.text.bio import is_valid_iob2
from training.model.crf import LinearChainCRF, word_emissions
from training.model.decoding import transition_mask, viterbi
from training.text.schema import LabelSchema
from training.model.encoding import fit_windows

TAGS = LabelSchema(("ORG", "PER", "LOC")).bio_tags()


@pytest.mark.parametrize("seed", range(20))
def test_softmax_head_decoding_is_always_valid(seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(12, len(TAGS), generator=generator) * 5
    scores[:, [t.startswith("I-") for t in TAGS]] += 3  # tempt it with orphan I- tags
    path = viterbi(torch.log_softmax(scores, -1), *transition_mask(TAGS))
    assert is_valid_iob2([TAGS[i] for i in path])


@pytest.mark.parametrize("seed", range(20))
def test_crf_head_decoding_is_always_valid(seed):
    generator = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(TAGS)
    with torch.no_grad():
        crf.transitions.copy_(torch.randn(len(TAGS), len(TAGS), generator=generator) * 10)
        crf.start.copy_(torch.randn(len(TAGS), generator=generator) * 10)
    path = crf.decode(torch.randn(9, len(TAGS), generator=generator) * 5)
    assert len(path) == 9 and is_valid_iob2([TAGS[i] for i in path])


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_tagger_with_word_features_decodes_valid_sequences(head):
    """Both heads, emissions = encoder + word features, random weights: never invalid."""
    from transformers import RobertaConfig, RobertaForTokenClassification

    from training.model.encoding import pad_batch
    from training.model.tagger import TokenTagger
    from training.model.word_features import MAX_FEATURES, WordFeatureEmissions

    torch.manual_seed(1)
    encoder = RobertaForTokenClassification(RobertaConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=40, num_labels=len(TAGS), pad_token_id=1))
    features = WordFeatureEmissions(97, len(TAGS))
    torch.nn.init.normal_(features.weights.weight, std=5.0)
    tagger = TokenTagger(encoder, TAGS, head, word_features=features).eval()
    rows = [{"input_ids": torch.randint(3, 50, (n,)).tolist(), "attention_mask": [1] * n,
             "word_features": torch.randint(0, 97, (n, MAX_FEATURES)).tolist()} for n in (7, 12, 3)]
    batch = pad_batch(rows, pad_id=1)
    assert batch["word_features"].shape == (3, 12, MAX_FEATURES)
    logits = tagger(**batch).logits
    start, trans = transition_mask(TAGS)
    from training.model.decoding import best_path

    for row, item in enumerate(rows):
        path = best_path(logits[row, : len(item["input_ids"])], start, trans, tagger.crf)
        assert is_valid_iob2([TAGS[i] for i in path])


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_feature_warm_start_fits_the_training_sentences(head):
    """The warm start alone (no encoder) must tag its training sentences and generalise
    through the context and shape features to a name it never saw."""
    from transformers import RobertaConfig, RobertaForTokenClassification

    from training.model.encoding import IGNORE_INDEX
    from training.train.feature_crf import fit_features
    from training.model.tagger import TokenTagger
    from training.model.word_features import MAX_FEATURES, WordFeatureEmissions, hashed_features

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    encoder = RobertaForTokenClassification(RobertaConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=40, num_labels=len(tags), pad_token_id=1))
    tagger = TokenTagger(encoder, tags, head, word_features=WordFeatureEmissions(4099, len(tags)))
    names = ["Nguyễn_Văn_An", "Trần_Thị_Bình", "Lê_Minh", "Phạm_Hùng", "Võ_Thị_Sáu"]
    places = ["Hà_Nội", "Huế", "Đà_Nẵng", "Cần_Thơ", "Vinh"]
    sentences = []
    for name in names:
        for place in places:
            sentences.append((["Ông", name, "đến", place, "hôm_qua", "."], ["O", "B-PER", "O", "B-LOC", "O", "O"]))
            sentences.append((["Bà", name, "rời", place, "."], ["O", "B-PER", "O", "B-LOC", "O"]))

    def encoded(words, labels):
        rows = [[0] * MAX_FEATURES] + [ids + [0] * (MAX_FEATURES - len(ids)) for ids in hashed_features(words, 4099)]
        return {"input_ids": [0] * len(rows), "word_features": rows,
                "labels": [IGNORE_INDEX] + [tags.index(t) for t in labels]}

    result = fit_features(tagger, [encoded(w, t) for w, t in sentences], l2=0.05, max_iterations=100)
    assert result.evaluations > 1 and result.loss < 1.0
    assert tagger.word_features.weights.weight.abs().sum() > 0
    start, trans = transition_mask(tags)
    from training.model.decoding import best_path

    for words, gold in [sentences[0], sentences[7], (["Ông", "Đặng_Quốc_Khánh", "đến", "Hải_Phòng", "."],
                                                     ["O", "B-PER", "O", "B-LOC", "O"])]:
        ids = torch.tensor([encoded(words, gold)["word_features"][1:]])
        with torch.no_grad():
            path = best_path(tagger.word_features(ids)[0], start, trans, tagger.crf)
        assert [tags[i] for i in path] == gold


def test_crf_likelihood_matches_brute_force():
    torch.manual_seed(0)
    tags = ["O", "B-X", "I-X"]
    crf = LinearChainCRF(tags)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(1, 4, 3)
    gold = torch.tensor([[1, 2, 0, 1]])
    start, trans, end = crf.constrained()

    def path_score(path):
        s = start[path[0]] + emissions[0, 0, path[0]] + end[path[-1]]
        return s + sum(trans[a, b] + emissions[0, k + 1, b] for k, (a, b) in enumerate(zip(path, path[1:])))

    log_z = torch.logsumexp(torch.stack([path_score(p) for p in itertools.product(range(3), repeat=4)]), 0)
    expected = log_z - path_score(gold[0].tolist())
    assert crf.nll(emissions, gold, torch.ones(1, 4)).item() == pytest.approx(expected.item(), abs=1e-4)


def test_word_emissions_packs_first_sub_tokens():
    logits = torch.arange(2 * 5 * 3, dtype=torch.float).reshape(2, 5, 3)
    labels = torch.tensor([[-100, 1, -100, 2, -100], [-100, 0, -100, -100, -100]])
    emissions, tags, mask = word_emissions(logits, labels)
    assert emissions.shape == (2, 2, 3) and mask.tolist() == [[1, 1], [1, 0]]
    assert torch.equal(emissions[0, 1], logits[0, 3]) and tags[0].tolist() == [1, 2]


@pytest.mark.slow
def test_crf_head_model_with_word_shapes_exports_loads_and_predicts(tmp_path, gold):
    from training import load_model
    from training.train.pipeline import run_once

    target = run_once(tiny_config(tmp_path, "model.head=crf", "model.tiny.word_shapes=true", "model.tiny.epochs=4",
                                  "model.word_features=true", "run_name=crf"), resume=False)
    assert (target / "crf.safetensors").exists() and (target / "word_features.safetensors").exists()
    settings = json.loads((target / "ner_config.json").read_text())
    assert settings["head"] == "crf" and settings["word_features"] is True
    assert json.loads((target / "config.json").read_text())["word_shapes"] is True
    model = load_model(target)
    assert model.tagger.crf is not None and model.word_shapes and model.tagger.feature_buckets > 0
    # the feature table was trained: it is no longer all zeros
    assert model.tagger.word_features.weights.weight.abs().sum() > 0
    for doc, entities in zip(gold.documents, model.predict([d.text for d in gold.documents])):
        for entity in entities:
            assert doc.text[entity.start:entity.end] == entity.text
        windows = []
        for words in model.segmenter.segment(doc.text):
            surfaces = [doc.text[a:b] for a, b in words]
            windows += [surfaces[a:b] for a, b in fit_windows(model.pieces, surfaces, model.max_length)]
        for tagged in model.tag_words(windows):
            assert is_valid_iob2(tagged.tags)
    from training.inference import ModelLoadError

    # a table trained on other feature strings must not load silently
    settings_file = target / "ner_config.json"
    settings_file.write_text(json.dumps({**settings, "word_feature_template": 1}))
    with pytest.raises(ModelLoadError, match="feature template 1"):
        load_model(target)
    settings_file.write_text(json.dumps(settings))
    (target / "word_features.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="word_features.safetensors"):
        load_model(target)
    (target / "crf.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="crf.safetensors"):
        load_model(target)
