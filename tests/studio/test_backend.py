"""The ML backend's HTTP edges, without Label Studio or a real model: size limit (413),
malformed bodies (400), JSON errors everywhere, /health while /predict runs, loopback only."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest
import studio_server
from conftest import ANNOTATIONS

from training.studio.backend import DEFAULT_MAX_BYTES, create_app, make_backend_server

CONFIG = (ANNOTATIONS / "labeling_config.xml").read_text(encoding="utf-8")
LABELS = ["DATE", "EVENT", "LOC", "ORG", "PER"]


class FakeModel:
    """What the backend uses of a NerModel; `predict` finds "Hà Nội" and can be held."""

    path = "/models/fake-v1"
    labels = LABELS

    def __init__(self, hold: float = 0.0):
        self.hold = hold
        self.started = threading.Event()
        self.release = threading.Event()

    def predict(self, texts):
        self.started.set()
        if self.hold:
            self.release.wait(self.hold)
        return [[SimpleNamespace(text="Hà Nội", label="LOC", start=t.index("Hà Nội"), end=t.index("Hà Nội") + 6,
                                 score=0.9)] if "Hà Nội" in t else [] for t in texts]


@pytest.fixture
def client():
    return create_app(FakeModel()).test_client()


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def predict_body(text="Hội nghị ở Hà Nội.", **extra):
    return {"tasks": [{"id": 1, "data": {"text": text}}], "label_config": CONFIG, **extra}


def test_predict_answers_in_label_studio_format(client):
    body = client.post("/predict", json=predict_body()).get_json()
    [prediction] = body["results"]
    assert prediction["result"][0]["value"] == {"start": 11, "end": 17, "text": "Hà Nội", "labels": ["LOC"]}
    assert body["model_version"] == "fake-v1"


# -- size limit ---------------------------------------------------------------------------
def test_request_over_the_limit_is_413_with_the_limit():
    client = create_app(FakeModel(), max_bytes=1000).test_client()
    small = {"tasks": [{"id": 1, "data": {"text": "x" * 900}}]}
    assert client.post("/predict", json=small).status_code == 200
    small["tasks"][0]["data"]["text"] += "x" * 100
    message = error_of(client.post("/predict", json=small), 413)
    assert "1000 bytes" in message


def test_default_limit_is_8_mib(client):
    assert DEFAULT_MAX_BYTES == 8 * 1024 * 1024
    message = error_of(client.post("/predict", data=b" " * (DEFAULT_MAX_BYTES + 1), content_type="application/json"), 413)
    assert "8 MiB" in message


# -- malformed bodies ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/setup", "/validate", "/predict", "/webhook"])
@pytest.mark.parametrize("body, content_type, expected", [
    (b"", "application/json", "empty"),
    (b"   \n", "application/json", "empty"),
    (b"garbage", "application/json", "not valid JSON"),
    (b"schema=x", "application/x-www-form-urlencoded", "not valid JSON"),
    (b"\xff\xfe\x00", "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "JSON object"),
    (b'"<View/>"', "application/json", "JSON object"),
    (b"null", "application/json", "JSON object"),
])
def test_garbage_empty_or_non_json_is_400(client, path, body, content_type, expected):
    assert expected in error_of(client.post(path, data=body, content_type=content_type), 400)


@pytest.mark.parametrize("path", ["/setup", "/predict"])
def test_deeply_nested_json_is_400(client, path):
    nested = b'{"tasks": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert "nested too deeply" in error_of(client.post(path, data=nested, content_type="application/json"), 400)


@pytest.mark.parametrize("path, field, make", [
    ("/predict", "label_config", lambda value: predict_body(label_config=value)),
    ("/setup", "schema", lambda value: {"schema": value, "project": "1.0"}),
    ("/validate", "config", lambda value: {"config": value}),
])
@pytest.mark.parametrize("value", [["<View/>"], {"xml": CONFIG}, 7, True])
def test_label_config_of_the_wrong_type_is_400(client, path, field, make, value):
    message = error_of(client.post(path, json=make(value)), 400)
    assert f'"{field}" must be a string' in message


def test_setup_and_validate_still_judge_the_config(client):
    assert client.post("/setup", json={"schema": CONFIG}).status_code == 200
    assert client.post("/validate", json={"config": CONFIG}).get_json() == {"status": "ok"}
    without_date = CONFIG.replace('<Label value="DATE" background="#ff7f0e" hotkey="d"/>', "")
    assert "DATE" in error_of(client.post("/setup", json={"schema": without_date}), 400)
    assert "DATE" in error_of(client.post("/validate", json={"config": without_date}), 422)
    assert "XML" in error_of(client.post("/validate", json={"config": "<View"}), 422)


def test_bad_tasks_are_400(client):
    assert "tasks" in error_of(client.post("/predict", json={"tasks": "x"}), 400)
    assert "task #0" in error_of(client.post("/predict", json={"tasks": [{"data": {"text": 3}}]}), 400)


# -- every error is JSON ------------------------------------------------------------------
def test_unknown_route_method_and_crash_are_json():
    class Broken(FakeModel):
        def predict(self, texts):
            raise RuntimeError("boom")

    client = create_app(Broken()).test_client()
    error_of(client.get("/nope"), 404)
    response = client.get("/predict")
    error_of(response, 405)
    assert "POST" in response.headers["Allow"]
    assert "RuntimeError" in error_of(client.post("/predict", json=predict_body()), 500)


def test_refused_training_carries_an_error(client):
    response = client.post("/webhook", json={"action": "START_TRAINING"})
    assert response.get_json()["status"] == "refused" and "training.run" in error_of(response, 501)
    assert client.post("/webhook", json={"action": "ANNOTATION_CREATED"}).get_json()["status"] == "ignored"


# -- real sockets -------------------------------------------------------------------------
@pytest.fixture
def served():
    """`make_backend_server` as `serve_backend` builds it (default host), in a thread."""
    model = FakeModel(hold=30.0)
    server = make_backend_server(model, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield model, server.server_port
    model.release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_health_answers_while_a_long_predict_runs(served):
    model, port = served
    url = f"http://127.0.0.1:{port}"
    body = json.dumps(predict_body("Hà Nội " * 150_000)).encode()  # about 1 MB
    answer = {}

    def slow_predict():
        request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer["status"] = response.status

    caller = threading.Thread(target=slow_predict)
    caller.start()
    try:
        assert model.started.wait(30), "predict() was not reached"
        for _ in range(3):
            began = time.monotonic()
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                assert json.load(response)["status"] == "UP"
            assert time.monotonic() - began < 1.0
        assert caller.is_alive(), "predict should still be held"
    finally:
        model.release.set()
        caller.join(60)
    assert answer == {"status": 200}


def test_backend_listens_on_loopback_only(served):
    _, port = served
    studio_server.assert_loopback_only(port)


def test_a_broken_model_never_seeds_the_version_store(tmp_path, tiny_model_dir):
    from training.studio.backend import open_store
    from training.studio.errors import StudioError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StudioError, match="--model: .*incomplete model directory"):
        open_store(tmp_path / "store", empty)
    store = open_store(tmp_path / "store", tiny_model_dir)  # the next start with a good model works
    assert store.names() == ["v0001"]


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_ports_out_of_range_are_refused_by_the_parser(port, capsys):
    from training.studio.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["backend", "--model", "models/tiny-asean", "--port", port])
    assert exit_info.value.code == 2 and "--port" in capsys.readouterr().err


def test_a_malformed_url_is_one_line_not_a_traceback():
    from training.studio.client import Studio
    from training.studio.errors import StudioError

    with pytest.raises(StudioError, match="not a usable Label Studio URL"):
        Studio("http://127.0.0.1:8080a", "token").check()
