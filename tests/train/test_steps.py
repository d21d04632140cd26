"""The training step made cheaper without changing a bit of it, and what training prints.

The CRF loss and the word packing were rewritten for speed (benchmarks/train_steps.py);
these tests hold them to the step-by-step loops they replaced: the same loss and the
same gradients, bit for bit, since a seeded run must export the same model."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from training.model.crf import LinearChainCRF, word_emissions
from training.model.encoding import IGNORE_INDEX, pad_batch

TAGS = ["O"] + [f"{p}-{t}" for t in ("ORG", "PER", "LOC", "EVENT", "DATE") for p in "BI"]


def loop_nll(crf: LinearChainCRF, emissions, tags, mask):
    """The CRF negative log-likelihood as first written: one slice per word."""
    start, trans, end = crf.constrained()
    emissions = emissions.float()
    batch = torch.arange(emissions.shape[0])
    tags = tags.clamp(min=0)
    score = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
    for k in range(1, emissions.shape[1]):
        step = trans[tags[:, k - 1], tags[:, k]] + emissions[batch, k, tags[:, k]]
        score = score + step * mask[:, k]
    lengths = mask.long().sum(dim=1)
    score = score + end[tags[batch, lengths - 1]]
    alpha = start + emissions[:, 0]
    for k in range(1, emissions.shape[1]):
        nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + emissions[:, k].unsqueeze(1), dim=1)
        alpha = torch.where(mask[:, k].unsqueeze(1).bool(), nxt, alpha)
    return (torch.logsumexp(alpha + end, dim=1) - score).mean()


def loop_word_emissions(logits, labels):
    """Word packing as first written: one row at a time."""
    keep = labels != IGNORE_INDEX
    counts = keep.sum(dim=1)
    width = max(int(counts.max()), 1)
    emissions = logits.new_zeros(logits.shape[0], width, logits.shape[2])
    tags = labels.new_zeros(logits.shape[0], width)
    mask = torch.zeros(logits.shape[0], width)
    for row in range(logits.shape[0]):
        n = int(counts[row])
        emissions[row, :n] = logits[row][keep[row]]
        tags[row, :n] = labels[row][keep[row]]
        mask[row, :n] = 1
    return emissions, tags, mask


def loss_and_gradients(crf, nll, pack, logits, labels):
    crf.zero_grad()
    logits = logits.clone().requires_grad_()
    loss = nll(crf, *pack(logits, labels))
    loss.backward()
    return [loss.detach(), logits.grad, *(p.grad if p.grad is not None else torch.zeros(0) for p in crf.parameters())]


@pytest.mark.parametrize("seed", range(4))
def test_crf_loss_and_gradients_are_bit_identical_to_the_word_loop(seed):
    generator = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(TAGS)
    for _ in range(40):
        with torch.no_grad():
            scale = float(torch.rand(1, generator=generator)) * 5
            for parameter in crf.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
        rows = int(torch.randint(1, 9, (1,), generator=generator))
        tokens = int(torch.randint(2, 90, (1,), generator=generator))
        labels = torch.randint(0, len(TAGS), (rows, tokens), generator=generator)
        labels[torch.rand(rows, tokens, generator=generator) < 0.5] = 0  # mostly O, as in news
        labels[torch.rand(rows, tokens, generator=generator) < 0.3] = IGNORE_INDEX  # later sub-tokens, padding
        labels[:, 0] = IGNORE_INDEX  # <s>
        labels[0, 1] = 0  # at least one word
        size = float(torch.rand(1, generator=generator)) * 20
        logits = torch.randn(rows, tokens, len(TAGS), generator=generator) * size
        before = loss_and_gradients(crf, loop_nll, loop_word_emissions, logits, labels)
        after = loss_and_gradients(crf, LinearChainCRF.nll, word_emissions, logits, labels)
        for old, new in zip(before, after):
            assert old.dtype == new.dtype and torch.equal(old, new)


def test_word_packing_matches_the_row_loop_on_empty_rows():
    labels = torch.full((3, 6), IGNORE_INDEX)
    labels[1, [1, 3, 4]] = torch.tensor([2, 0, 1])
    logits = torch.randn(3, 6, 4)
    for old, new in zip(loop_word_emissions(logits, labels), word_emissions(logits, labels)):
        assert old.dtype == new.dtype and torch.equal(old, new)


def test_tensor_rows_pad_like_list_rows():
    rows = [{"input_ids": [0, 5, 6, 2], "attention_mask": [1, 1, 1, 1], "token_type_ids": [0, 1, 4, 0],
             "word_features": [[0, 0], [3, 4], [5, 0], [0, 0]], "labels": [IGNORE_INDEX, 1, 0, IGNORE_INDEX]},
            {"input_ids": [0, 7, 2], "attention_mask": [1, 1, 1], "token_type_ids": [0, 2, 0],
             "word_features": [[0, 0], [9, 8], [0, 0]], "labels": [IGNORE_INDEX, 2, IGNORE_INDEX]}]
    tensors = [{k: torch.tensor(v, dtype=torch.int32) for k, v in row.items()} for row in rows]
    from_lists, from_tensors = pad_batch(rows, pad_id=1), pad_batch(tensors, pad_id=1)
    assert from_lists.keys() == from_tensors.keys()
    for key in from_lists:
        assert from_tensors[key].dtype == torch.long and torch.equal(from_lists[key], from_tensors[key])
    assert from_tensors["input_ids"][1].tolist() == [0, 7, 2, 1]
    assert from_tensors["labels"][1, 3] == IGNORE_INDEX


def test_dataset_rows_are_int32_tensors_and_the_trainer_can_length_group_them(gold, segmenter):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from training.model.encoding import WordPieces
    from training.train.datasets import SentenceDataset, sentences_of

    class Characters:  # a stand-in tokenizer: one sub-token per character
        cls_token_id, sep_token_id, pad_token_id, unk_token_id = 0, 2, 1, 3

        def tokenize(self, word, split_special_tokens=True):
            return list(word)

        def convert_tokens_to_ids(self, tokens):
            return [4 + ord(t) % 50 for t in tokens]

    sentences = sentences_of(gold.documents[:1], segmenter)
    tags = sorted({t for s in sentences for t in s.tags})
    dataset = SentenceDataset(sentences, WordPieces(Characters()), {t: i for i, t in enumerate(tags)}, 256,
                              word_shapes=True, feature_buckets=1 << 10)
    assert len(dataset) >= len(sentences)
    row = dataset[0]
    assert set(row) == {"input_ids", "attention_mask", "token_type_ids", "word_features", "labels"}
    assert all(v.dtype == torch.int32 for v in row.values()) and row["word_features"].ndim == 2
    order = list(LengthGroupedSampler(8, dataset=dataset))
    assert sorted(order) == list(range(len(dataset)))
    batch = pad_batch([dataset[i] for i in order[:8]], pad_id=1)
    assert batch["word_features"].shape[:2] == batch["input_ids"].shape


def test_the_training_log_is_one_line_per_epoch(capsys):
    from training.train.progress import EpochLog

    args = SimpleNamespace(eval_strategy="epoch")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=16, global_step=0, epoch=None, num_train_epochs=2)
    log = EpochLog()
    log.on_log(args, state, None, logs={"eval_f1": 0.7})  # the warm start's evaluation: not an epoch
    log.on_train_begin(args, state, None)
    for epoch, (loss, f1) in enumerate([(3.25, 0.8), (1.5, 0.75)], start=1):
        state.global_step, state.epoch = 8 * epoch, float(epoch)
        log.on_step_end(args, state, None)
        log.on_log(args, state, None, logs={"loss": loss, "grad_norm": 1.0, "learning_rate": 1e-3, "epoch": epoch})
        log.on_log(args, state, None, logs={"eval_f1": f1, "eval_loss": 2.0, "epoch": epoch})
    log.on_train_end(args, state, None)
    out = capsys.readouterr().out
    assert out.startswith("before training: dev F1 0.7000\n")
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    assert lines[0].startswith("epoch 1/2: train loss 3.25, dev F1 0.8000, ") and lines[0].endswith(" s")
    assert lines[1].startswith("epoch 2/2: train loss 1.5, dev F1 0.7500 (best 0.8000, epoch 1), ")
    assert len(lines) == 2


def test_early_stopping_says_what_its_bar_is(caplog):
    from transformers import TrainerControl, TrainerState

    from training.train.stopping import EarlyStopping

    def message(scores, **bar):
        stopper, control = EarlyStopping(patience=2, **bar), TrainerControl()
        with caplog.at_level(logging.INFO, logger="training"):
            caplog.clear()
            for epoch, f1 in enumerate(scores, start=1):
                stopper.on_evaluate(None, TrainerState(epoch=float(epoch)), control, metrics={"eval_f1": f1})
        return " ".join(r.getMessage() for r in caplog.records)

    warm = message([0.70, 0.71], bar=0.7848, warm_start={"dev_f1": 0.7234, "standard_error": 0.0614})
    assert "above 0.7848" in warm and "warm-start feature CRF's dev F1 0.7234 plus one standard error (0.0614)" in warm
    best = message([0.80, 0.79, 0.78], bar=0.7848, warm_start={"dev_f1": 0.7234, "standard_error": 0.0614})
    assert "above 0.8000" in best and "the best epoch's (epoch 1)" in best
