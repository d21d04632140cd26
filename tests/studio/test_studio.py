"""Label Studio integration against a REAL server (started by `python -m training.studio serve`):
push (idempotent) -> annotate through the API -> pull (validated, atomic, diff) -> train on
the pulled file -> preannotate -> ML backend (/predict in Label Studio's format, connect,
Label Studio fetching predictions from it), and the one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import studio_server
from conftest import ANNOTATIONS, GOLD, ROOT, tiny_config

pytestmark = [pytest.mark.server, pytest.mark.slow]

PROJECT = "ASEAN news"
CONFIG = ANNOTATIONS / "labeling_config.xml"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = studio_server.start(tmp_path_factory.mktemp("studio"))
    yield srv
    studio_server.stop(srv)
    assert srv.token not in srv.log.read_text(encoding="utf-8", errors="replace"), "the token leaked into the log"


@pytest.fixture
def env(server, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", server.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server.token)
    return server


@pytest.fixture(scope="module")
def studio(server):
    from training.studio.client import Studio

    return Studio(server.url, server.token)


def cli(*args: str) -> int:
    from training.studio.__main__ import main

    return main(list(args))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def project_tasks(studio, title):
    return studio.tasks(studio.get_project(title).id)


# -- serve + push -------------------------------------------------------------------------------
def test_serve_printed_the_url(server):
    assert f"Label Studio is running at {server.url}" in server.log.read_text(encoding="utf-8")


def test_label_studio_listens_on_loopback_only(server):
    """`serve` binds 127.0.0.1 for real (Label Studio's --internal-host), not 0.0.0.0."""
    studio_server.assert_loopback_only(server.port, server.pids())
    assert "0.0.0.0" not in server.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def ssrf_project(studio):
    return studio.client.projects.create(title="SSRF check").id


@pytest.mark.parametrize("url", ["http://10.1.2.3/webhook", "http://169.254.169.254/latest", "http://127.0.0.2:9/x",
                                 "http://192.168.1.1/hook", "http://0.0.0.0:9/x"])
def test_ssrf_protection_is_on_but_for_127_0_0_1(studio, ssrf_project, url):
    """Only 127.0.0.1 (where the ML backend runs) is let through Label Studio's SSRF checks:
    webhooks and ML backends elsewhere on private/loopback/link-local addresses are refused."""
    from label_studio_sdk.core.api_error import ApiError

    for create in (studio.client.webhooks.create, studio.client.ml.create):
        with pytest.raises(ApiError) as refused:
            create(url=url, project=ssrf_project)
        assert refused.value.status_code == 403 and "reserved network address" in str(refused.value.body)
    allowed = studio.client.webhooks.create(url="http://127.0.0.1:9/webhook", project=ssrf_project)
    studio.client.webhooks.delete(allowed.id)


def test_push_twice_does_not_duplicate(env, studio, capsys):
    title = "Push twice"
    assert cli("push", "--project", title, "--tasks", str(ANNOTATIONS / "tasks.json")) == 0
    assert "5 task(s) imported" in capsys.readouterr().out
    assert cli("push", "--project", title) == 0
    assert "0 task(s) imported, 5 already there" in capsys.readouterr().out
    tasks = project_tasks(studio, title)
    expected = json.loads((ANNOTATIONS / "tasks.json").read_text(encoding="utf-8"))
    assert sorted(t.data["source"] for t in tasks) == sorted(t["data"]["source"] for t in expected)


def annotate_from_gold(studio, title):
    """What annotators do in the browser, through the API: the gold results per task."""
    gold = {t["data"]["source"]: t for t in json.loads(GOLD.read_text(encoding="utf-8"))}
    for task in project_tasks(studio, title):
        result = gold[task.data["source"]]["annotations"][0]["result"]
        studio.client.annotations.create(task.id, result=result, was_cancelled=False, ground_truth=False)


@pytest.fixture(scope="module")
def pulled(server, studio, tmp_path_factory):
    studio.push(PROJECT, CONFIG, [ANNOTATIONS / "tasks.json"])
    annotate_from_gold(studio, PROJECT)
    out = tmp_path_factory.mktemp("pull") / "pulled_export.json"
    report = studio.pull(PROJECT, CONFIG, out)
    assert report.tasks == 5
    return out


# -- pull ---------------------------------------------------------------------------------------
def spans_by_source(corpus):
    return {(d.source, s.start, s.end, s.label) for d in corpus.documents for s in d.spans}


def test_pull_equals_gold(pulled, gold, schema):
    from training.data.readers import read_corpus

    corpus = read_corpus(pulled, schema=schema)
    assert len(corpus.documents) == 5
    assert spans_by_source(corpus) == spans_by_source(gold)
    assert [d.text for d in sorted(corpus.documents, key=lambda d: d.source)] == \
        [d.text for d in sorted(gold.documents, key=lambda d: d.source)]


def test_pull_reports_changes_and_is_atomic(env, studio, pulled, tmp_path, capsys):
    out = tmp_path / "export.json"
    assert cli("pull", "--project", PROJECT, "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "tasks added: 5, removed: 0" in text and "PER: +" in text
    assert cli("pull", "--project", PROJECT, "--out", str(out)) == 0
    assert "no change since the previous export" in capsys.readouterr().out
    # one more span in one task: reported per type
    task = project_tasks(studio, PROJECT)[0]
    text_ = task.data["text"]
    start = text_.index("ASEAN")
    old = studio.client.annotations.list(task.id)[0]
    result = [r for r in old.result if not (r["value"]["start"] <= start < r["value"]["end"])]
    result.append({"from_name": "label", "to_name": "text", "type": "labels",
                   "value": {"start": start, "end": start + 5, "text": "ASEAN", "labels": ["EVENT"]}})
    studio.client.annotations.update(old.id, result=result)
    before = out.read_text(encoding="utf-8")
    assert cli("pull", "--project", PROJECT, "--out", str(out)) == 0
    text = capsys.readouterr().out
    assert "tasks added: 0, removed: 0" in text and "EVENT: +1" in text
    assert out.read_text(encoding="utf-8") != before
    assert not list(tmp_path.glob(".export.json.*.tmp"))
    studio.client.annotations.update(old.id, result=old.result)


def test_pull_with_unknown_label_keeps_last_good_file(env, studio, tmp_path, capsys):
    config = CONFIG.read_text(encoding="utf-8").replace(
        '<Label value="DATE"', '<Label value="MISC" background="#888888"/>\n    <Label value="DATE"')
    project = studio.client.projects.create(title="with MISC", label_config=config)
    task_ids = studio.client.projects.import_tasks(
        project.id, request=[{"data": {"text": "Hội nghị ASEAN ở Hà Nội.", "source": "misc.txt"}}],
        return_task_ids=True).task_ids
    studio.client.annotations.create(task_ids[0], result=[
        {"from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 9, "end": 14, "text": "ASEAN", "labels": ["MISC"]}}])
    out = tmp_path / "export.json"
    out.write_text("[]\n", encoding="utf-8")
    assert cli("pull", "--project", "with MISC", "--out", str(out)) == 1
    line = one_error_line(capsys)
    assert "'MISC' is not in the schema" in line and "left unchanged" in line
    assert out.read_text(encoding="utf-8") == "[]\n"
    assert (tmp_path / "export.rejected.json").exists()
    assert not list(tmp_path.glob(".export.json.*.tmp"))


# -- train on the pulled file, preannotate -------------------------------------------------------
@pytest.fixture(scope="module")
def pulled_model(pulled, tmp_path_factory):
    from training.train.pipeline import run_once

    tmp = tmp_path_factory.mktemp("pulled-model")
    return run_once(tiny_config(tmp, f"data.train={pulled}", "model.tiny.epochs=3"), resume=False)


@pytest.fixture(scope="module")
def unlabelled_project(server, tmp_path_factory):
    """A project of unlabelled tasks pushed from .txt files."""
    folder = tmp_path_factory.mktemp("txt")
    tasks = json.loads((ANNOTATIONS / "tasks.json").read_text(encoding="utf-8"))
    paths = []
    for task in tasks[:3]:
        path = folder / task["data"]["source"]
        path.write_text(task["data"]["text"][:1500], encoding="utf-8")
        paths.append(str(path))
    from training.studio.__main__ import main

    args = ["push", "--url", server.url, "--token", server.token, "--project", "To label", "--tasks", *paths]
    assert main(args) == 0 and main(args) == 0
    return "To label"


def test_train_on_pulled_export(pulled_model):
    assert (Path(pulled_model) / "model.safetensors").is_file()


def test_preannotate_uploads_predictions(env, studio, pulled_model, unlabelled_project, capsys):
    assert cli("preannotate", "--model", str(pulled_model), "--project", unlabelled_project,
               "--order-by-uncertainty") == 0
    out = capsys.readouterr().out
    assert "3 prediction(s) uploaded" in out and "lowest score first" in out
    project = studio.get_project(unlabelled_project)
    assert project.sampling == "Uncertainty sampling" and project.model_version == Path(pulled_model).name
    tasks = {t.id: t for t in studio.tasks(project.id)}
    assert len(tasks) == 3
    predictions = studio.client.predictions.list(project=project.id)
    assert sorted(p.task for p in predictions) == sorted(tasks)
    for prediction in predictions:
        assert prediction.model_version == Path(pulled_model).name
        assert 0.0 <= prediction.score <= 1.0
        text = tasks[prediction.task].data["text"]
        for item in prediction.result:
            assert (item["from_name"], item["to_name"], item["type"]) == ("label", "text", "labels")
            value = item["value"]
            assert text[value["start"]:value["end"]] == value["text"]
            assert value["labels"][0] in ("ORG", "PER", "LOC", "EVENT", "DATE") and 0 <= item["score"] <= 1
    # the order printed is the order of the scores
    order = [int(line.split()[1].rstrip(":")) for line in out.splitlines() if line.startswith("  task ")]
    scores = {p.task: p.score for p in predictions}
    assert [scores[t] for t in order] == sorted(scores[t] for t in order)
    # again: nothing new
    assert cli("preannotate", "--model", str(pulled_model), "--project", unlabelled_project) == 0
    assert "0 prediction(s) uploaded" in capsys.readouterr().out
    assert len(studio.client.predictions.list(project=project.id)) == 3


# -- ML backend ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backend_app(pulled_model):
    from training.studio.backend import create_app

    return create_app(pulled_model)


def test_backend_predict_in_label_studio_format(backend_app, studio, unlabelled_project):
    project = studio.get_project(unlabelled_project)
    client = backend_app.test_client()
    assert client.get("/health").get_json()["status"] == "UP"
    assert client.post("/setup", json={"project": f"{project.id}.0", "schema": project.label_config,
                                       "hostname": "http://localhost", "access_token": "x"}).status_code == 200
    tasks = [{"id": t.id, "data": t.data, "meta": {}, "annotations": [], "predictions": []}
             for t in studio.tasks(project.id)]
    response = client.post("/predict", json={"tasks": tasks, "project": f"{project.id}.0",
                                             "label_config": project.label_config,
                                             "params": {"login": None, "password": None, "context": None}})
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["results"]) == len(tasks)
    for task, prediction in zip(tasks, body["results"]):
        for item in prediction["result"]:
            assert task["data"]["text"][item["value"]["start"]:item["value"]["end"]] == item["value"]["text"]
        # Label Studio accepts it as a prediction
        created = studio.client.predictions.create(task=task["id"], result=prediction["result"],
                                                   score=prediction["score"], model_version="backend-format-check")
        assert created.id


def test_backend_refuses_training_and_bad_config(backend_app):
    client = backend_app.test_client()
    response = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}})
    assert response.status_code == 501 and response.get_json()["status"] == "refused"
    assert "training.run" in response.get_json()["reason"]
    assert client.post("/webhook", json={"action": "ANNOTATION_CREATED"}).get_json()["status"] == "ignored"
    config = CONFIG.read_text(encoding="utf-8").replace('<Label value="DATE" background="#ff7f0e" hotkey="d"/>', "")
    response = client.post("/setup", json={"schema": config})
    assert response.status_code == 400 and "DATE" in response.get_json()["error"]


def test_connect_backend_and_label_studio_fetches_predictions(env, studio, pulled_model, capsys):
    """`backend` as a user runs it, `connect`, then Label Studio itself calls /predict."""
    import time
    import urllib.request

    port = studio_server.free_port()
    url = f"http://127.0.0.1:{port}"
    backend = subprocess.Popen([sys.executable, "-m", "training.studio", "backend", "--model", str(pulled_model),
                                "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert backend.poll() is None and time.monotonic() < deadline, backend.stdout.read() if backend.poll() else "timeout"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    assert json.load(response)["model_version"] == Path(pulled_model).name
                break
            except OSError:
                time.sleep(0.3)
        title = "Backend check"
        assert cli("push", "--project", title) == 0
        assert cli("connect", "--project", title, "--backend-url", url) == 0
        assert "connected to" in capsys.readouterr().out
        assert cli("connect", "--project", title, "--backend-url", url) == 0
        assert "updated on" in capsys.readouterr().out
        project = studio.get_project(title)
        assert [b.url for b in studio.client.ml.list(project=project.id)] == [url]
        studio.client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                                     selected_items={"all": True, "excluded": []})
        predictions = studio.client.predictions.list(project=project.id)
        assert len(predictions) == 5
        assert {p.model_version for p in predictions} == {Path(pulled_model).name}
        assert all(p.result for p in predictions)
    finally:
        backend.terminate()
        backend.wait(timeout=30)


# -- one-line errors ----------------------------------------------------------------------------
def test_wrong_token_is_one_line(server):
    env = dict(server.env, LABEL_STUDIO_URL=server.url, LABEL_STUDIO_API_KEY="0" * 40)
    proc = subprocess.run([sys.executable, "-m", "training.studio", "push", "--project", PROJECT],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the API token" in lines[0], proc.stderr


def test_unreachable_server_is_one_line(monkeypatch, capsys):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "0" * 40)
    assert cli("pull", "--url", f"http://127.0.0.1:{port}", "--project", PROJECT) == 1
    assert "cannot reach Label Studio" in one_error_line(capsys)


def test_project_missing_a_label_is_one_line(env, studio, pulled_model, tmp_path, capsys):
    config = CONFIG.read_text(encoding="utf-8").replace('<Label value="DATE" background="#ff7f0e" hotkey="d"/>', "")
    studio.client.projects.create(title="No DATE", label_config=config)
    assert cli("pull", "--project", "No DATE", "--out", str(tmp_path / "x.json")) == 1
    line = one_error_line(capsys)
    assert "lacks label(s) DATE" in line
    assert not (tmp_path / "x.json").exists()
    assert cli("preannotate", "--project", "No DATE", "--model", str(pulled_model)) == 1
    assert "lacks label(s) DATE" in one_error_line(capsys)


def test_missing_token_and_unknown_project(monkeypatch, env, capsys):
    assert cli("pull", "--project", "Nope nope") == 1
    assert "no project titled 'Nope nope'" in one_error_line(capsys)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    assert cli("push") == 1
    assert "LABEL_STUDIO_API_KEY" in one_error_line(capsys)
