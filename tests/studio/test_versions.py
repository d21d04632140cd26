"""The version store, the gate and the job plumbing, fast: no Label Studio, no training.
A stand-in job process (a script in place of `python -m training.studio.retrain`) plays
the training job; the webhook bodies are shaped as Label Studio 1.23 sends them
(label_studio/ml/api_connector.py `MLApi.train`, webhooks/utils.py `run_webhook_sync`)."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from training.studio.__main__ import main
from training.studio.backend import create_app
from training.studio.errors import StudioError
from training.studio.retrain import Retrainer, read_status
from training.studio.versions import GateDecision, VersionStore, choose_holdout, gate

LABELS = ["DATE", "EVENT", "LOC", "ORG", "PER"]


class FakeModel:
    labels = LABELS

    def __init__(self, path):
        self.path = str(path)

    def predict(self, texts):
        return [[SimpleNamespace(text="Hà Nội", label="LOC", start=0, end=6, score=0.9)] for _ in texts]


def fake_export(path: Path, f1: float = 0.5) -> Path:
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "metrics.json").write_text(json.dumps({"f1": f1, "split": "test"}), encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path):
    store = VersionStore(tmp_path / "store")
    assert store.import_model(fake_export(tmp_path / "tiny-asean")) == "v0001"
    return store


# -- the held-out tasks and the gate -----------------------------------------------------------
def test_holdout_is_seeded_stable_and_a_fifth():
    ids = list(range(100, 125))
    chosen = choose_holdout(ids, 42)
    assert chosen == choose_holdout(reversed(ids), 42) == sorted(chosen)
    assert len(chosen) == 5 and set(chosen) <= set(ids)
    assert choose_holdout(ids, 43) != chosen
    assert len(choose_holdout([7], 42)) == 1 and len(choose_holdout([1, 2, 3, 4, 5], 42)) == 1
    assert choose_holdout([], 42) == []


def test_holdout_is_chosen_once_per_project(store):
    first, new = store.holdout(3, [1, 2, 3, 4, 5], seed=42)
    assert new and len(first) == 1
    again, new = store.holdout(3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], seed=42)
    assert again == first and not new  # more tasks later: the same held-out ones
    assert store.holdouts()["3"]["task_ids"] == first
    _, new = store.holdout(4, [1, 2, 3, 4, 5], seed=42)
    assert new


@pytest.mark.parametrize("candidate, current, accepted", [(0.5, 0.4, True), (0.5, 0.5, True), (0.49, 0.5, False)])
def test_gate_switches_iff_not_worse(candidate, current, accepted):
    decision = gate(candidate, "v0003", current, [11, 12])
    assert decision.accepted is accepted
    assert decision.decision == ("switched" if accepted else "refused")
    assert "[11, 12]" in decision.reason and ("kept v0003" in decision.reason) is not accepted
    assert gate(0.0, None, None, [1]).accepted


# -- the store ------------------------------------------------------------------------------
def test_import_publish_rollback(store, tmp_path):
    assert store.names() == ["v0001"] and store.current() == "v0001"
    first = store.record("v0001")
    assert first["gate"]["decision"] == "initial" and first["metrics"]["f1"] == 0.5
    # hard links (or copies): the store's files do not follow a later rewrite of the source
    assert (store.path("v0001") / "model.safetensors").read_bytes() == b"weights"
    stamp = store.stamp()
    with store.lock():
        name = store.publish(fake_export(store.jobs_dir() / "job-0001" / "out" / "run", 0.7),
                             {"gate": GateDecision(True, "better", 0.7, "v0001", 0.5, [1]).to_dict()})
        store.set_current(name)
    assert name == "v0002" and store.current() == "v0002" and store.stamp() != stamp
    assert not (store.jobs_dir() / "job-0001" / "out" / "run").exists()
    rows = store.listing()
    assert [(r["version"], r["current"]) for r in rows] == [("v0001", False), ("v0002", True)]
    assert store.rollback("v0001") == "v0002" and store.current() == "v0001"
    with pytest.raises(StudioError, match="no version 'v0009'"):
        store.rollback("v0009")
    with pytest.raises(StudioError, match=r"no version '\.\./x'"):
        store.rollback("../x")
    assert store.current() == "v0001"
    assert not list(store.root.glob(".current.tmp-*"))


def test_cli_versions_and_rollback(store, capsys):
    with store.lock():
        store.publish(fake_export(store.root / "jobs" / "out", 0.3),
                      {"gate": GateDecision(False, "worse: kept v0001", 0.3, "v0001", 0.5, [1],
                                            decision="refused").to_dict(), "metrics": {"f1": 0.3}})
    assert main(["versions", "--models", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "2 version(s)" in out and "* v0001" in out and "refused: worse: kept v0001" in out
    assert main(["rollback", "--models", str(store.root), "--to", "v0002"]) == 0
    assert "current v0001 -> v0002" in capsys.readouterr().out
    assert main(["versions", "--models", str(store.root), "--json"]) == 0
    assert [r["current"] for r in json.loads(capsys.readouterr().out)["versions"]] == [False, True]
    assert main(["rollback", "--models", str(store.root), "--to", "v0007"]) == 1
    assert "no version 'v0007'" in capsys.readouterr().err


# -- the backend follows the pointer ----------------------------------------------------------
def backend_client(store, retrainer=None, loader=FakeModel):
    app = create_app(loader(store.path(store.current())), store=store, retrainer=retrainer, loader=loader)
    return app.test_client(), app.extensions["vi_news_ner_backend"]


def predict(client):
    body = client.post("/predict", json={"tasks": [{"id": 1, "data": {"text": "Hà Nội"}}]}).get_json()
    return body["model_version"], body["results"][0]["model_version"]


def test_backend_serves_the_pointer_and_picks_up_a_rollback(store):
    with store.lock():
        store.publish(fake_export(store.root / "jobs" / "a", 0.7), {})
        store.set_current("v0002")
    client, _ = backend_client(store)
    assert predict(client) == ("v0002", "v0002")
    store.rollback("v0001")
    assert client.get("/health").get_json()["model_version"] == "v0002"  # /health never loads
    assert client.get("/health").get_json()["current"] == "v0001"
    assert predict(client) == ("v0001", "v0001")
    versions = client.get("/versions").get_json()
    assert versions["versions"] == ["v0001", "v0002"] and versions["current"] == "v0001"
    assert {"version", "created", "metrics", "gate", "current"} <= set(versions["details"][0])


def test_a_version_that_does_not_load_keeps_the_served_one(store):
    def loader(path):
        if Path(path).name == "v0002":
            raise OSError("model.safetensors is truncated")
        return FakeModel(path)

    with store.lock():
        store.publish(fake_export(store.root / "jobs" / "b", 0.7), {})
    client, _ = backend_client(store, loader=loader)
    store.rollback("v0002")
    assert predict(client) == ("v0001", "v0001")
    health = client.get("/health").get_json()
    assert "truncated" in health["load_error"] and health["model_version"] == "v0001"


# -- jobs, with a stand-in job process ---------------------------------------------------------
FAKE_JOB = textwrap.dedent("""\
    #!{python}
    # stands in for `python -m training.studio.retrain JOB_DIR`
    import json, os, sys, time
    from pathlib import Path
    from training.studio.retrain import write_status
    from training.studio.versions import VersionStore, gate
    job_dir = Path(sys.argv[-1])
    job = json.loads((job_dir / "job.json").read_text())
    assert sys.argv[1:3] == ["-m", "training.studio.retrain"] and os.environ["LABEL_STUDIO_API_KEY"] == "t" * 40
    write_status(job_dir, state="training", pid=os.getpid(), epoch=0, epochs=3, started_at=time.time())
    if os.environ.get("FAKE_JOB") == "hang":
        time.sleep(120)
    store = VersionStore(job["store"])
    out = job_dir / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{{}}")
    decision = gate(float(os.environ.get("FAKE_F1", "0.9")), store.current(), 0.5, [1])
    with store.lock():
        name = store.publish(out, {{"gate": decision.to_dict()}})
        if decision.accepted:
            store.set_current(name)
    write_status(job_dir, state="done" if decision.accepted else "refused", version=name, message=decision.reason)
""")

# what Label Studio 1.23 posts to <backend>/webhook for "Start training" (MLApi.train: the
# project through ProjectWebhookSerializer, all model fields plus the counts)
PROJECT = {"id": 3, "title": "Retrain", "label_config": "<View/>", "model_version": "v0001", "task_number": 5,
           "num_tasks_with_annotations": 5, "total_annotations_number": 5, "created_by": 1, "organization": 1}
START_TRAINING = {"action": "START_TRAINING", "project": PROJECT}


@pytest.fixture
def fake_python(tmp_path):
    script = tmp_path / "fake-python"
    script.write_text(FAKE_JOB.format(python=sys.executable), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def wait_for(client, states, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        training = client.get("/health").get_json().get("training") or {}
        if training.get("state") in states:
            return training
        time.sleep(0.05)
    raise AssertionError(f"no job reached {states}: {training}")


def retrainer(store, fake_python, every=None):
    return Retrainer(store, "configs/tiny.yaml", ["model.tiny.epochs=1"], "http://127.0.0.1:9", "t" * 40, every,
                     python=fake_python)


def test_start_training_runs_a_job_and_switches(store, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_JOB", "done")
    client, _ = backend_client(store, retrainer(store, fake_python))
    answer = client.post("/webhook", json=START_TRAINING).get_json()
    assert answer["status"] == "started" and answer["job"] == "job-0001"
    status = wait_for(client, {"done"})
    assert status["version"] == "v0002" and status["elapsed_s"] >= 0
    job = json.loads((store.jobs_dir() / "job-0001" / "job.json").read_text(encoding="utf-8"))
    assert job["project_id"] == 3 and job["overrides"] == ["model.tiny.epochs=1"] and "t" * 40 not in json.dumps(job)
    assert predict(client) == ("v0002", "v0002")  # the watcher refreshed, or this request did
    assert client.post("/job_status", json={"job": "job-0001"}).get_json()["job_status"] == "finished"
    assert client.post("/job_status", json={"job": "job-0042"}).status_code == 410


def test_a_refused_version_is_kept_but_not_served(store, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_F1", "0.1")
    client, _ = backend_client(store, retrainer(store, fake_python))
    assert client.post("/webhook", json=START_TRAINING).get_json()["status"] == "started"
    status = wait_for(client, {"refused"})
    assert "kept v0001" in status["message"] and status["version"] == "v0002"
    assert predict(client) == ("v0001", "v0001")
    assert client.get("/versions").get_json()["versions"] == ["v0001", "v0002"]


def test_killed_job_fails_and_nothing_changes(store, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_JOB", "hang")
    trainer = retrainer(store, fake_python)
    client, _ = backend_client(store, trainer)
    assert client.post("/webhook", json=START_TRAINING).get_json()["status"] == "started"
    status = wait_for(client, {"training"})
    busy = client.post("/webhook", json=START_TRAINING).get_json()
    assert busy["status"] == "busy" and busy["job"] == status["job"]
    assert client.post("/job_status", json={"job": status["job"]}).get_json()["job_status"] == "started"
    os.kill(status["pid"], signal.SIGKILL)
    failed = wait_for(client, {"failed"})
    assert "killed by signal 9" in failed["message"] and "unchanged" in failed["message"]
    assert store.names() == ["v0001"] and store.current() == "v0001"
    assert predict(client) == ("v0001", "v0001")


def test_retrain_every_counts_annotation_events(store, fake_python, monkeypatch):
    monkeypatch.setenv("FAKE_JOB", "done")
    client, _ = backend_client(store, retrainer(store, fake_python, every=3))
    annotation = {"id": 9, "result": [], "task": 1, "project": 3}
    created = {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": {"id": 1}, "project": PROJECT}
    updated = {**created, "action": "ANNOTATION_UPDATED"}
    assert client.post("/webhook", json=created).get_json()["annotations_since_last_job"] == 1
    assert client.post("/webhook", json=updated).get_json()["annotations_since_last_job"] == 2
    assert client.post("/webhook", json={"action": "TASKS_CREATED", "project": PROJECT}).get_json()["status"] == \
        "ignored"
    assert client.post("/webhook", json=updated).get_json()["status"] == "started"
    assert wait_for(client, {"done"})["job"] == "job-0001"
    assert read_status(store.jobs_dir() / "job-0001")["reason"].startswith("3 annotation event(s)")


def test_start_training_needs_a_project(store, fake_python):
    client, _ = backend_client(store, retrainer(store, fake_python))
    response = client.post("/webhook", json={"action": "START_TRAINING"})
    assert response.status_code == 400 and "project" in response.get_json()["error"]
