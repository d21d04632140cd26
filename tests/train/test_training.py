"""Train, evaluate, export: python -m training.run end to end on small budgets."""

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, ROOT, tiny_config
from training.train.backbone import BackboneError, load_backbone
from training.train.config import ModelConfig
from training.inference import load_model
from training.train.pipeline import run_cv, run_once

pytestmark = pytest.mark.slow
EXPORTED = {"config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt", "bpe.codes",
            "ner_config.json", "metrics.json", "metadata.json", "model_card.md", "errors.jsonl", "training_log.json"}


def test_export_is_complete_and_loadable(tiny_model_dir):
    assert EXPORTED <= {p.name for p in tiny_model_dir.iterdir()}
    settings = json.loads((tiny_model_dir / "ner_config.json").read_text())
    assert settings["segmenter"]["name"] == "underthesea" and settings["max_length"] == 256
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["max_position_embeddings"] == 258 and config["pad_token_id"] == 1
    assert config["id2label"]["0"] == "O" and "B-EVENT" in config["label2id"]
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    assert {"f1", "precision", "recall", "macro_f1", "per_type"} <= set(metrics)
    assert metrics["split"] == "test" and metrics["documents"] == {"train": 3, "dev": 1, "test": 1}
    model = load_model(tiny_model_dir)
    text = "Thứ trưởng Đỗ Hùng Việt dẫn đầu đoàn Việt Nam tham dự Hội nghị Cấp cao ASEAN."
    for entity in model.predict(text):
        assert text[entity.start:entity.end] == entity.text
    errors = [json.loads(l) for l in (tiny_model_dir / "errors.jsonl").read_text().splitlines()]
    assert all(e["kind"] in ("false_positive", "false_negative") and e["text"] in e["context"] for e in errors)


def test_splits_are_deterministic_from_the_seed(tiny_model_dir, tmp_path):
    from training.data.splits import load_splits

    config = tiny_config(tmp_path)
    a, b = load_splits(config.data, 42), load_splits(config.data, 42)
    assert [d.id for d in a.train + a.dev + a.test] == [d.id for d in b.train + b.dev + b.test]
    metadata = json.loads((tiny_model_dir / "metadata.json").read_text())
    assert len(metadata["data_sha256"]) == 64 and metadata["versions"]["torch"]


def test_fallback_is_loud_and_recorded(tmp_path, capsys):
    config = tiny_config(tmp_path, "model.name_or_path=vinai/phobert-base-v2", "model.fallback=tiny",
                         "model.tiny.epochs=2", "run_name=fallback")
    target = run_once(config, resume=False)
    out = capsys.readouterr().out
    assert "PRETRAINED BACKBONE NOT LOADED: vinai/phobert-base-v2" in out and "FALLING BACK" in out
    box = [line for line in out.splitlines() if line.startswith("!")]
    assert len({len(line) for line in box}) == 1  # wrapped inside one width, not cut
    metrics = json.loads((target / "metrics.json").read_text())
    shown = " ".join(line.strip("! ") for line in box)
    reason = metrics["backbone"]["fallback_reason"].split()
    assert reason[0] in shown and (reason[-1] in shown or shown.count(" ...")), (reason, shown)  # its end too
    assert metrics["backbone"]["requested"] == "vinai/phobert-base-v2"
    assert metrics["backbone"]["used"] == "tiny" and metrics["backbone"]["fallback_reason"]
    assert "does NOT use the requested pretrained backbone" in (target / "model_card.md").read_text()


def test_fallback_error_stops_with_a_clear_message(tmp_path):
    with pytest.raises(BackboneError, match=r"cannot load backbone 'vinai/phobert-base-v2'.*model.name_or_path"):
        load_backbone(ModelConfig(name_or_path="vinai/phobert-base-v2", fallback="error"), ["O"], ["a"], tmp_path)
    broken = tmp_path / "phobert-copy"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(BackboneError, match="local directory"):
        load_backbone(ModelConfig(name_or_path=str(broken), fallback="error"), ["O"], ["a"], tmp_path)


def test_a_real_phobert_style_directory_loads_through_the_hub_code_path(tiny_model_dir, tmp_path):
    """A local PhoBERT-architecture directory goes through AutoModel/AutoTokenizer, not the fallback."""
    backbone = load_backbone(ModelConfig(name_or_path=str(tiny_model_dir), fallback="error"),
                             ["O", "B-X", "I-X"], [], tmp_path)
    assert backbone.used == str(tiny_model_dir) and backbone.fallback_reason is None
    assert type(backbone.tokenizer).__name__ == "PhobertTokenizer"
    assert backbone.model.config.id2label == {0: "O", 1: "B-X", 2: "I-X"}


def test_trains_on_a_conll_corpus_with_another_label_set(tmp_path):
    config = tiny_config(
        tmp_path, f"data.train={FIXTURES / 'covid_style.conll'}", f"data.test={FIXTURES / 'covid_style.jsonl'}",
        "data.format=auto", "data.labeling_config=null", "data.split.dev=0", "model.tiny.epochs=3",
        "run_name=covid")
    target = run_once(config, resume=False)
    settings = json.loads((target / "ner_config.json").read_text())
    assert set(settings["labels"]) == {"PERSON_NAME", "ORGANIZATION", "LOCATION", "DATE",
                                       "SYMPTOM_AND_DISEASE", "TRANSPORTATION", "AGE"}
    assert "B-PERSON_NAME" in json.loads((target / "config.json").read_text())["label2id"]


def test_a_failed_export_leaves_no_half_written_model(tmp_path, tiny_model_dir, monkeypatch):
    import training.train.export

    config = tiny_config(tmp_path, "model.tiny.epochs=1", "run_name=broken")
    monkeypatch.setattr(training.train.export, "model_card", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_once(config, resume=False)
    models = tmp_path / "models"
    assert not (models / "broken").exists()
    assert list(models.iterdir()) == []  # no temporary directory left behind either


def test_a_killed_run_leaves_no_model_directory(tmp_path):
    out = tmp_path / "models"
    process = subprocess.Popen(
        [sys.executable, "-m", "training.run", "--config", "configs/tiny.yaml", "--set", f"output.dir={out}",
         "--set", f"output.checkpoints={tmp_path / 'ckpt'}", "--set", "model.tiny.epochs=200",
         "--set", "train.early_stopping_patience=1000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    for line in process.stdout:  # wait until training has started
        if "training on" in line or time.time() > deadline:
            break
    time.sleep(2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "tiny-asean").exists()
    assert not out.exists() or not any(p for p in out.iterdir() if not p.name.startswith("."))


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    first = run_once(tiny_config(tmp_path, "model.tiny.epochs=2", "train.early_stopping_patience=50"), resume=False)
    before = [e for e in json.loads((first / "training_log.json").read_text()) if "eval_f1" in e]
    again = run_once(tiny_config(tmp_path, "model.tiny.epochs=3", "train.early_stopping_patience=50"), resume=True)
    after = [e for e in json.loads((again / "training_log.json").read_text()) if "eval_f1" in e]
    assert [e["epoch"] for e in after] == [1, 2, 3]
    assert after[:2] == before  # epochs 1-2 come from the checkpoint, not from retraining
    with pytest.raises(ValueError, match="no complete checkpoint"):
        run_once(tiny_config(tmp_path, "run_name=never-trained"), resume=True)


def test_leave_one_document_out_cross_validation(tmp_path, capsys):
    summary = run_cv(tiny_config(tmp_path, "model.tiny.epochs=2"))
    assert len(summary["folds"]) == 5
    assert len({fold["test_document"] for fold in summary["folds"]}) == 5
    assert 0 <= summary["f1_mean"] <= 1 and summary["f1_std"] >= 0
    assert "mean ± std" in capsys.readouterr().out
    assert (tmp_path / "models" / "tiny-asean-cv" / "cv_metrics.json").exists()


def test_cli_reports_config_errors_with_exit_code_2():
    result = subprocess.run([sys.executable, "-m", "training.run", "--set", "train.epoch=3"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "train.epoch: unknown key (did you mean train.epochs?)" in result.stderr


def test_evaluate_command_matches_the_training_evaluation(tiny_model_dir, tmp_path, capsys):
    from training.evaluate import main

    errors = tmp_path / "errors.jsonl"
    assert main([str(tiny_model_dir), str(ROOT / "annotations" / "gold_export.json"), "--errors", str(errors)]) == 0
    out = capsys.readouterr().out
    assert "micro avg" in out and "5 document(s)" in out and errors.exists()


def test_evaluate_command_shows_what_the_reader_skipped_and_runs_outside_the_repo(tiny_model_dir, tmp_path,
                                                                                   monkeypatch, capsys):
    from training.evaluate import main

    tasks = json.loads((ROOT / "annotations" / "gold_export.json").read_text(encoding="utf-8"))[:2]
    tasks[1]["annotations"][0]["was_cancelled"] = True
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the default labeling config path is relative to the repo: not needed
    assert main([str(tiny_model_dir), str(export)]) == 0
    captured = capsys.readouterr()
    assert "1 document(s)" in captured.out
    assert f"warning: {export}: task {tasks[1]['id']}" in captured.err and "skipped" in captured.err

    tasks[0]["annotations"][0]["was_cancelled"] = True
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    assert main([str(tiny_model_dir), str(export)]) == 1
    assert "no usable document to score" in capsys.readouterr().err
    assert main([str(tiny_model_dir), str(ROOT / "annotations" / "gold_export.json"), "--errors", str(tmp_path)]) == 1
    assert f"error: --errors {tmp_path}" in capsys.readouterr().err


def test_evaluate_command_reads_the_format_from_the_config(tiny_model_dir, tmp_path, capsys):
    from training.evaluate import main

    data = tmp_path / "sentences.data"  # a suffix that says nothing: the config's data.format decides
    data.write_text("Ông O\nĐỗ_Hùng_Việt B-PER\nđến O\nHà_Nội B-LOC\n", encoding="utf-8")
    config = tmp_path / "conll.yaml"
    config.write_text("data:\n  format: conll\n  labeling_config: null\n", encoding="utf-8")
    assert main([str(tiny_model_dir), str(data), "--config", str(config)]) == 0
    assert "1 document(s)" in capsys.readouterr().out


def test_training_on_an_export_with_no_usable_task_says_why(tmp_path, capsys):
    from training.run import main

    tasks = json.loads((ROOT / "annotations" / "gold_export.json").read_text(encoding="utf-8"))
    for task in tasks:
        task["annotations"][0]["was_cancelled"] = True
    export = tmp_path / "cancelled.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    assert main(["--config", "configs/tiny.yaml", "--set", f"data.train={export}"]) != 0
    err = capsys.readouterr().err
    assert "no usable document to train on" in err and "1 (cancelled)" in err


def test_an_export_target_that_is_not_a_model_is_refused_before_training(tmp_path, capsys):
    from training.run import main

    (tmp_path / "tiny-asean").write_text("precious", encoding="utf-8")
    base = ["--config", "configs/tiny.yaml", "--set", f"output.checkpoints={tmp_path / 'ckpt'}"]
    assert main([*base, "--set", f"output.dir={tmp_path}"]) == 2
    assert "exists and is not an exported model" in capsys.readouterr().err
    assert main([*base, "--set", f"output.dir={tmp_path / 'tiny-asean'}"]) == 2
    err = capsys.readouterr().err
    assert "output.dir:" in err and "is a file" in err
    assert (tmp_path / "tiny-asean").read_text(encoding="utf-8") == "precious"
    assert not (tmp_path / "ckpt").exists()  # refused before any work


def test_cross_validation_needs_three_documents(tmp_path, capsys):
    from training.run import main

    tasks = json.loads((ROOT / "annotations" / "gold_export.json").read_text(encoding="utf-8"))[:2]
    export = tmp_path / "two.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    assert main(["--config", "configs/tiny.yaml", "--set", f"data.train={export}", "--cv",
                 "--set", f"output.checkpoints={tmp_path / 'ckpt'}"]) == 2
    assert "--cv needs at least 3 documents" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()


def test_training_data_without_entities_or_shared_with_the_test_set(tmp_path):
    from training.data.splits import load_splits

    tasks = json.loads((ROOT / "annotations" / "gold_export.json").read_text(encoding="utf-8"))
    for task in tasks:
        task["annotations"][0]["result"] = []
    export = tmp_path / "none.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    config = tiny_config(tmp_path)
    config.data.train = str(export)
    assert any("hold no entity span" in w for w in load_splits(config.data, 42).warnings)
    config = tiny_config(tmp_path)
    config.data.test = config.data.train  # the same file: every test document is trained on
    splits = load_splits(config.data, 42)
    assert any("test document(s) also among the training documents" in w for w in splits.warnings)


def test_resume_skips_an_interrupted_save_and_refuses_another_model_config(tmp_path, caplog):
    from training.train.checkpoints import CONFIG_FILE, STATE_FILE, resume_checkpoint
    from training.train.config import load_config

    config = load_config(ROOT / "configs" / "tiny.yaml")
    run_dir = tmp_path / "run"
    for step, complete in ((8, True), (16, True), (24, False)):
        folder = run_dir / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / STATE_FILE).write_text("{}", encoding="utf-8")
            (folder / CONFIG_FILE).write_text(json.dumps(config.to_dict()), encoding="utf-8")
    assert resume_checkpoint(run_dir, config) == run_dir / "checkpoint-16"
    assert "checkpoint-24: its save was interrupted" in caplog.text
    more_epochs = load_config(ROOT / "configs" / "tiny.yaml", ["train.batch_size=4", "model.tiny.epochs=60"])
    assert resume_checkpoint(run_dir, more_epochs) == run_dir / "checkpoint-16"  # train.* may change
    other = load_config(ROOT / "configs" / "tiny.yaml", ["model.tiny.hidden_size=128"])
    with pytest.raises(ValueError, match=r"other settings \(model.tiny.hidden_size: 256 -> 128\)"):
        resume_checkpoint(run_dir, other)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        resume_checkpoint(tmp_path / "nothing", config)


def test_ctrl_c_is_one_line_not_a_traceback(monkeypatch, capsys):
    import training.run
    import training.train.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training.train.pipeline, "run_once", interrupted)
    assert training.run.main(["--config", "configs/tiny.yaml"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err


def test_two_process_ddp_run_on_cpu(tmp_path):
    """The same command under torchrun (gloo): both ranks train, rank 0 exports once."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "training.run",
         "--config", "configs/tiny.yaml", "--set", "model.tiny.epochs=2",
         "--set", f"output.dir={tmp_path / 'models'}", "--set", f"output.checkpoints={tmp_path / 'ckpt'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("exported ") == 1
    metadata = json.loads((tmp_path / "models" / "tiny-asean" / "metadata.json").read_text())
    assert metadata["documents"]["train"] == 3


def test_masked_lm_warm_up_trains_the_encoder_on_extra_text(tmp_path):
    import torch
    from transformers import set_seed

    from training.train.config import PretrainConfig
    from training.train.pretrain import unlabelled_sentences, warm_up
    from training.text.segmentation import get_segmenter
    from training.train.tiny_backbone import build_tiny_backbone

    extra = tmp_path / "news.txt"
    extra.write_text("Bộ trưởng Ngoại giao Việt Nam dự Hội nghị ASEAN tại Lào.\n" * 20, encoding="utf-8")
    sentences = unlabelled_sentences([str(extra)], get_segmenter("underthesea"))
    assert len(sentences) == 20
    set_seed(0)
    config = load_config_tiny()
    model, tokenizer = build_tiny_backbone([w for words in sentences for w in words], ["O", "B-X", "I-X"],
                                           config.model.tiny, tmp_path / "tok")
    before = model.roberta.encoder.layer[0].attention.self.query.weight.clone()
    metrics = warm_up(model, tokenizer, sentences, PretrainConfig(epochs=2, batch_size=8), 1e-3, 0, False,
                      tmp_path / "mlm", 256)
    assert metrics["train_loss"] > 0
    assert not torch.equal(before, model.roberta.encoder.layer[0].attention.self.query.weight)


def load_config_tiny():
    from training.train.config import load_config

    return load_config(ROOT / "configs" / "tiny.yaml")


def test_time_budget_stops_before_an_epoch_that_would_overrun(monkeypatch):
    from transformers import TrainerControl, TrainerState

    from training.train import stopping

    clock = [0.0]
    monkeypatch.setattr(stopping.time, "perf_counter", lambda: clock[0])
    budget = stopping.TimeBudget(minutes=10)
    state, control = TrainerState(), TrainerControl()
    budget.on_train_begin(None, state, control)
    for epoch, seconds in enumerate((200, 150, 100), start=1):  # ends at 200 s, 350 s, 450 s
        clock[0] += seconds
        state.epoch = epoch
        budget.on_epoch_end(None, state, control)
        if control.should_training_stop:
            break
    # after 450 s, another epoch of up to 200 s would end past 600 s
    assert control.should_training_stop and state.epoch == 3
    control = TrainerControl()
    budget.on_step_end(None, state, control)
    assert not control.should_training_stop
    clock[0] = 601
    budget.on_step_end(None, state, control)
    assert control.should_training_stop


def test_tiny_learning_rates_shrink_with_the_square_root_of_the_corpus():
    from training.train.loop import learning_rate_scale

    assert learning_rate_scale(40, 60) == learning_rate_scale(60, 60) == 1.0  # never scaled up
    assert learning_rate_scale(240, 60) == pytest.approx(0.5)
    assert learning_rate_scale(4569, 60) == pytest.approx(0.1146, abs=1e-4)
    assert learning_rate_scale(4569, None) == 1.0  # off


def test_early_stopping_counts_from_the_warm_start_bar():
    """With a warm start, an epoch must beat its dev F1 plus one standard error; patience
    runs from the start of training, not from the encoder's own best epoch."""
    from transformers import TrainerControl, TrainerState

    from training.train.stopping import EarlyStopping

    def stopped_after(scores, **bar):
        stopper, control = EarlyStopping(patience=3, **bar), TrainerControl()
        for evaluation, f1 in enumerate(scores, start=1):
            stopper.on_evaluate(None, TrainerState(), control, metrics={"eval_f1": f1})
            if control.should_training_stop:
                return evaluation
        return None

    climbing_below_bar = [0.90, 0.91, 0.92, 0.915, 0.91]
    assert stopped_after(climbing_below_bar, bar=0.93) == 3
    assert stopped_after(climbing_below_bar) is None  # no warm start: 0.92 at epoch 3, patience left
    assert stopped_after([0.90, 0.94, 0.93, 0.93, 0.93], bar=0.93) == 5  # beat the bar at epoch 2
    assert stopped_after([0.90], bar=0.93) is None


def test_time_budget_counts_work_before_the_trainer(monkeypatch):
    """The feature warm start runs before the Trainer; `since` charges it to the budget."""
    from transformers import TrainerControl, TrainerState

    from training.train import stopping

    clock = [0.0]
    monkeypatch.setattr(stopping.time, "perf_counter", lambda: clock[0])

    def stops_after_first_epoch(since):
        clock[0] = 300.0  # five minutes of warm start before the Trainer begins
        budget = stopping.TimeBudget(minutes=10, since=since)
        state, control = TrainerState(), TrainerControl()
        budget.on_train_begin(None, state, control)
        clock[0] += 200
        state.epoch = 1
        budget.on_epoch_end(None, state, control)
        return control.should_training_stop

    assert stops_after_first_epoch(since=0.0)  # 500 s used, another 200 s epoch would end at 700 s
    assert not stops_after_first_epoch(since=None)  # counted from the Trainer's start: 200 + 200 s


@pytest.mark.slow
def test_warm_start_is_kept_when_no_epoch_beats_it_on_dev(tmp_path):
    """An encoder that only hurts (a learning rate that blows it up) must not cost the
    user the feature CRF they would have had: the warm start is exported instead."""
    from training.train.pipeline import run_once

    target = run_once(tiny_config(tmp_path, "model.tiny.epochs=2", "model.tiny.learning_rate=1e4",
                                  "model.emission_dropout=0", "run_name=blown"), resume=False)
    warm = json.loads((target / "metrics.json").read_text())["warm_start"]
    assert warm["kept"] is True and warm["dev_f1"] > 0.3
    from training import load_model

    model = load_model(target)
    # the exported warm start is the feature CRF alone: no random encoder logits on top
    assert not model.tagger.encoder.classifier.weight.any() and not model.tagger.encoder.classifier.bias.any()
    text = "Bộ trưởng Ngoại giao Việt Nam dự Hội nghị ASEAN tại Jakarta ngày 10/7/2024."
    assert model.predict(text)  # the feature CRF alone still finds entities


def test_warm_start_dev_score_is_recorded(tiny_model_dir):
    from training.train.warm_start import keep_warm_start

    warm = json.loads((tiny_model_dir / "metrics.json").read_text())["warm_start"]
    assert 0.0 <= warm["dev_f1"] <= 1.0 and 0.0 <= warm["best_epoch_dev_f1"] <= 1.0
    assert 0.0 < warm["standard_error"] < 0.2
    assert warm["kept"] == keep_warm_start(warm["dev_f1"], warm["best_epoch_dev_f1"], warm["standard_error"])


def test_an_epoch_must_beat_the_warm_start_by_one_standard_error():
    from training.train.warm_start import f1_standard_error, keep_warm_start

    se = f1_standard_error(0.9267, 2847)
    assert se == pytest.approx(0.00489, abs=1e-5)
    assert f1_standard_error(0.9, 0) == 0.0
    assert keep_warm_start(0.9267, 0.9315, se)  # +0.48 points on 2,847 entities: noise
    assert not keep_warm_start(0.8963, 0.9068, f1_standard_error(0.8963, 1195))  # +1.05 on 1,195: real
    assert keep_warm_start(0.9, 0.85, 0.0) and not keep_warm_start(0.85, 0.9, 0.0)


@pytest.mark.slow
def test_a_seeded_run_exports_the_same_model_on_a_busy_machine(tmp_path):
    from training.train.pipeline import run_once

    def scores(run_name: str) -> dict:
        target = run_once(tiny_config(tmp_path, "model.tiny.epochs=6", f"run_name={run_name}"), resume=False)
        metrics = json.loads((target / "metrics.json").read_text())
        assert metrics["time_budget"] is None  # no wall-clock stop unless asked for
        return {key: metrics[key] for key in ("f1", "precision", "recall", "per_type", "warm_start")}

    quiet = scores("quiet")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded = scores("loaded")
    finally:
        for process in busy:
            process.kill()
    assert loaded == quiet
