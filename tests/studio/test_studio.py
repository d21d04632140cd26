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


# -- agreement and review -----------------------------------------------------------------------
def test_review_sends_disputed_tasks_and_writes_the_reviews_back(env, studio, tmp_path, capsys):
    """Two annotators' work (tests/fixtures/two_annotators.json) in a project; `review` puts the
    4 disputed tasks in a review project with each annotator's spans as a prediction; a
    reviewer's annotation there comes back as the review that wins in `pull`."""
    from conftest import FIXTURES

    from training.data.readers import read_corpus
    from training.text.schema import read_labeling_config

    title, review_title = "Two annotators", "Two annotators review"
    fixture = json.loads((FIXTURES / "two_annotators.json").read_text(encoding="utf-8"))
    emails = {a["completed_by"]["email"] for t in fixture for a in t["annotations"]}
    for email in sorted(emails):
        studio.client.users.create(username=email.split("@")[0], email=email, password=email[::-1] + "-pw1")
    project = studio.client.projects.create(title=title, label_config=CONFIG.read_text(encoding="utf-8"))
    studio.client.projects.import_tasks(project.id, request=[
        {"data": t["data"], "annotations": [{k: a[k] for k in ("completed_by", "result", "was_cancelled",
                                                                "ground_truth")} for a in t["annotations"]]}
        for t in fixture])

    def review_cli() -> list[str]:
        assert cli("review", "--project", title, "--review-project", review_title) == 0
        return capsys.readouterr().out.splitlines()

    out = review_cli()
    assert out[0] == f"project {title!r} (id {project.id}): agreement F1 0.733 over 5 task(s) with 2+ annotators; " \
                     "4 below 1"
    review_project = studio.get_project(review_title)
    assert out[1] == f"review project {review_title!r} (id {review_project.id}, created): 4 task(s) added, " \
                     "0 already there, 0 already reviewed"
    assert out[2] == f"reviews written back as ground truth: 0 new, 0 updated, 0 unchanged; train on " \
                     f"`pull --project {title!r}`"
    assert review_project.label_config == project.label_config
    tasks = {t.data["source"]: t for t in studio.tasks(review_project.id)}
    assert sorted(tasks) == ["tin-02.txt", "tin-03.txt", "tin-04.txt", "tin-05.txt"]
    by_source = {t["data"]["source"]: t for t in fixture}
    for source, task in tasks.items():
        assert task.data["text"] == by_source[source]["data"]["text"] and task.data["review_of_project"] == project.id
        predictions = studio.client.predictions.list(task=task.id)
        assert sorted(p.model_version for p in predictions) == ["lan@example.vn", "minh@example.vn"]
        for prediction in predictions:
            annotation = next(a for a in by_source[source]["annotations"]
                              if a["completed_by"]["email"] == prediction.model_version)
            assert prediction.result == annotation["result"]
    assert tasks["tin-02.txt"].data["agreement_f1"] == 0.3333

    assert review_cli()[1].endswith(", exists): 0 task(s) added, 4 already there, 0 already reviewed")

    # the reviewer accepts Lan's version of task 2 (the full EVENT, Lào as LOC)
    accepted = next(a for a in by_source["tin-02.txt"]["annotations"] if a["completed_by"]["email"] == "lan@example.vn")
    made = studio.client.annotations.create(tasks["tin-02.txt"].id, result=accepted["result"], was_cancelled=False)
    out = review_cli()
    assert out[1].endswith("0 task(s) added, 3 already there, 1 already reviewed")
    assert out[2].startswith("reviews written back as ground truth: 1 new, 0 updated, 0 unchanged")
    assert review_cli()[2].startswith("reviews written back as ground truth: 0 new, 0 updated, 1 unchanged")
    studio.client.annotations.update(made.id, result=accepted["result"][:2])  # the reviewer changes their mind
    assert review_cli()[2].startswith("reviews written back as ground truth: 0 new, 1 updated, 0 unchanged")
    source_task = next(t for t in studio.tasks(project.id) if t.data["source"] == "tin-02.txt")
    reviews = [a for a in studio.client.annotations.list(source_task.id) if a.last_action == "fixed_and_accepted"]
    assert len(reviews) == 1 and reviews[0].ground_truth and reviews[0].result == accepted["result"][:2]

    # what trains: the project's pull, where the review wins; agreement leaves the review out
    out_file = tmp_path / "pulled.json"
    assert cli("pull", "--project", title, "--out", str(out_file)) == 0
    capsys.readouterr()
    corpus = read_corpus(out_file, schema=read_labeling_config(CONFIG))
    task2 = next(d for d in corpus.documents if d.source == "tin-02.txt")
    assert [(s.start, s.end, s.label) for s in task2.spans] == \
        [(v["start"], v["end"], v["labels"][0]) for v in (r["value"] for r in accepted["result"][:2])]
    assert cli("agreement", str(out_file), "--top", "0") == 0
    text = capsys.readouterr().out
    assert "overall F1 (micro over pairs): 0.733 (11 span(s) in both of 30 compared)" in text
    assert "1 review(s) written back (adjudications)" in text


# -- retraining from Label Studio: versions and the gate (issue 18) ----------------------------
RETRAIN = "Retrain"
# small and quick on 2 cores: a 1-layer, 64-wide encoder, no feature-CRF warm start
SMALL = ("model.feature_warm_start=false", "model.tiny.hidden_size=64", "model.tiny.num_hidden_layers=1",
         "model.tiny.intermediate_size=128", "model.tiny.num_attention_heads=2")
RETRAIN_SETS = (*SMALL, "model.tiny.epochs=2")
RETRAIN_EVERY = 4
RUNNING = ("queued", "pulling", "training", "evaluating")


@pytest.fixture(scope="module")
def weak_model(tmp_path_factory):
    """The model the backend starts from (v0001): a fifth of an epoch, so it finds next to nothing."""
    from training.train.pipeline import run_once

    tmp = tmp_path_factory.mktemp("weak-model")
    return run_once(tiny_config(tmp, *SMALL, "model.tiny.epochs=0.2"), resume=False)


class RetrainingBackend:
    def __init__(self, url, store, process, log, project_id, ml_id):
        self.url, self.store, self.process, self.log = url, store, process, log
        self.project_id, self.ml_id = project_id, ml_id

    def call(self, path, body=None, timeout=60):
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def training(self) -> dict:
        return self.call("/health")["training"] or {}

    def wait(self, states, job=None, timeout=600.0) -> dict:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.training()
            if status.get("state") in states and (job is None or status.get("job") == job):
                return status
            assert self.process.poll() is None, self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no job reached {states} in {timeout:.0f} s: {self.training()}")

    def predict(self, studio) -> dict:
        tasks = [{"id": t.id, "data": t.data} for t in studio.tasks(self.project_id)[:2]]
        return self.call("/predict", {"tasks": tasks, "label_config": CONFIG.read_text(encoding="utf-8")})

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(encoding="utf-8", errors="replace"):
            assert time.monotonic() < deadline, f"{text!r} not in the backend's log"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def retraining(server, studio, weak_model, tmp_path_factory):
    """`backend --config configs/tiny.yaml --retrain-every 4` as a user starts it, connected to a
    project whose five tasks were annotated before (so no annotation webhook has fired yet)."""
    import time
    import urllib.request

    studio.push(RETRAIN, CONFIG, [ANNOTATIONS / "tasks.json"])
    annotate_from_gold(studio, RETRAIN)
    tmp = tmp_path_factory.mktemp("retrain")
    port = studio_server.free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(server.env, LABEL_STUDIO_URL=server.url, LABEL_STUDIO_API_KEY=server.token)
    log = tmp / "backend.log"
    sets = [arg for setting in RETRAIN_SETS for arg in ("--set", setting)]
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "training.studio", "backend", "--model", str(weak_model), "--config",
             "configs/tiny.yaml", *sets, "--models", str(tmp / "versions"), "--retrain-every", str(RETRAIN_EVERY),
             "--port", str(port)], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(encoding="utf-8")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        project = studio.get_project(RETRAIN)
        ml_id, _ = studio.connect_backend(RETRAIN, url)
        yield RetrainingBackend(url, tmp / "versions", process, log, project.id, ml_id)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert server.token not in log.read_text(encoding="utf-8", errors="replace")


def test_start_training_from_label_studio_makes_a_new_version(retraining, studio):
    """"Start training" as Label Studio sends it (its API -> START_TRAINING on /webhook); while
    the job trains, /predict answers with the current version; then /versions grows, the gate
    switches, and predictions (ours and those Label Studio fetches) carry the new version."""
    import time

    health = retraining.call("/health")
    assert health["model_version"] == health["current"] == "v0001" and health["training"] is None
    studio.client.ml.train(retraining.ml_id)  # Label Studio posts {"action": "START_TRAINING", "project": {...}}
    answered = []
    while (state := retraining.training().get("state")) in (*RUNNING, None):
        began = time.monotonic()
        body = retraining.predict(studio)
        if retraining.training().get("state") in RUNNING:  # the job ran all along this request
            answered.append((state, body["model_version"], round(time.monotonic() - began, 2)))
        time.sleep(0.5)
    status = retraining.training()
    assert status["state"] == "done", status
    assert status["job"] == "job-0001" and status["reason"] == "START_TRAINING" and status["epochs"] == 2
    assert answered and {version for _, version, _ in answered} == {"v0001"}, answered
    assert {"pulling", "training"} & {state for state, _, _ in answered}, answered
    versions = retraining.call("/versions")
    assert versions["versions"] == ["v0001", "v0002"] and versions["current"] == "v0002"
    new = versions["details"][1]
    assert new["current"] and new["gate"]["decision"] == "switched" and new["gate"]["accepted"]
    held_out = versions["held_out"][str(retraining.project_id)]["task_ids"]
    assert new["gate"]["held_out"] == held_out and len(held_out) == 1
    assert new["metrics"]["held_out_f1"] == new["gate"]["candidate_f1"] > 0
    body = retraining.predict(studio)
    assert body["model_version"] == "v0002" and {r["model_version"] for r in body["results"]} == {"v0002"}
    # Label Studio itself asks the backend for predictions: they carry the new version
    studio.client.actions.create(id="retrieve_tasks_predictions", project=retraining.project_id,
                                 selected_items={"all": True, "excluded": []})
    predictions = studio.client.predictions.list(project=retraining.project_id)
    assert predictions and {p.model_version for p in predictions} == {"v0002"}
    retraining.wait_for_log("now serving v0002 (was v0001)")
    retraining.wait_for_log("job job-0001 done: v0002: micro F1")


def test_killed_training_job_leaves_the_served_version(retraining, studio):
    """--retrain-every 4: four annotation updates in Label Studio (ANNOTATION_UPDATED webhooks)
    start a job; `kill -9` on it changes nothing that is served or stored."""
    import os
    import signal

    before = retraining.call("/versions")
    for task in studio.tasks(retraining.project_id)[:RETRAIN_EVERY]:
        annotation = studio.client.annotations.list(task.id)[0]
        studio.client.annotations.update(annotation.id, result=annotation.result)
    status = retraining.wait({"training"}, job="job-0002", timeout=120)
    assert status["reason"] == f"{RETRAIN_EVERY} annotation event(s) (--retrain-every {RETRAIN_EVERY})"
    os.kill(status["pid"], signal.SIGKILL)
    failed = retraining.wait({"failed"}, job="job-0002", timeout=60)
    assert "killed by signal 9" in failed["message"] and "unchanged" in failed["message"]
    retraining.wait_for_log("job job-0002 failed: the training process was killed by signal 9")
    assert retraining.call("/versions") == before
    assert not {"ckpt", "out"} & {p.name for p in (retraining.store / "jobs" / "job-0002").iterdir()}
    assert retraining.predict(studio)["model_version"] == "v0002"
    assert sorted(p.name for p in retraining.store.iterdir() if not p.name.startswith(".")) == \
        ["current", "holdout.json", "jobs", "v0001", "v0002"]


def test_gate_refuses_a_worse_model(retraining, studio):
    """Round two: an annotator wipes the spans of the four tasks the model trains on (the held-out
    task keeps its gold). Those four ANNOTATION_UPDATED events start a job (--retrain-every 4);
    a model trained on no entities finds none on the held-out task, F1 0 < the current
    version's: the new version is kept, for the record, and not served."""
    held_out = retraining.call("/versions")["held_out"][str(retraining.project_id)]["task_ids"]
    current_f1 = retraining.call("/versions")["details"][1]["gate"]["candidate_f1"]
    trained_on = [t for t in studio.tasks(retraining.project_id) if t.id not in held_out]
    assert len(trained_on) == RETRAIN_EVERY
    for task in trained_on:
        annotation = studio.client.annotations.list(task.id)[0]
        studio.client.annotations.update(annotation.id, result=[])
    status = retraining.wait({"done", "refused", "failed"}, job="job-0003")
    assert status["state"] == "refused", status
    assert status["version"] == "v0003" and "kept v0002" in status["message"]
    versions = retraining.call("/versions")
    assert versions["versions"] == ["v0001", "v0002", "v0003"] and versions["current"] == "v0002"
    refused = versions["details"][2]
    assert not refused["current"] and refused["gate"]["decision"] == "refused"
    assert refused["gate"]["candidate_f1"] < refused["gate"]["current_f1"] == pytest.approx(current_f1)
    assert retraining.predict(studio)["model_version"] == "v0002"
    retraining.wait_for_log("job job-0003 refused: v0003 not served")  # once the job's process has exited


def test_versions_command_and_rollback_reach_the_running_backend(retraining, studio, capsys):
    assert cli("versions", "--models", str(retraining.store)) == 0
    out = capsys.readouterr().out
    assert "3 version(s)" in out and "* v0002" in out and "refused: micro F1" in out
    assert cli("rollback", "--models", str(retraining.store), "--to", "v0001") == 0
    assert "current v0002 -> v0001" in capsys.readouterr().out
    assert retraining.predict(studio)["model_version"] == "v0001"  # no restart
    assert retraining.call("/versions")["current"] == "v0001"
