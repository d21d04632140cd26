"""An ML backend for Label Studio built on `predict()` (Flask; the same HTTP protocol as
label-studio-ml 1.x, without its Flask 1.x pin).

Endpoints (what Label Studio calls):
- `GET /health`  -> `{"status": "UP", "model_class": ..., "model_version": ...}`; it takes no
  lock, so it answers at once while a long `/predict` runs (the server is threaded).
- `POST /setup`  (`{"project", "schema", "hostname", "access_token", ...}`) -> `{"model_version"}`;
  400 when the project's labeling config lacks one of the model's labels.
- `POST /predict` (`{"tasks": [{"id", "data": {"text": ...}}], "label_config", "project", "params"}`)
  -> `{"results": [{"result": [...], "score", "model_version"}, ...], "model_version"}`, one
  prediction per task, in task order. Result items are those of a manual annotation
  (`from_name`/`to_name` from the request's labeling config, `type: labels`,
  `value {start, end, text, labels}`) plus a per-span `score`; entities whose label the
  request's config does not define are left out.
- `POST /webhook`: retraining from Label Studio is REFUSED, by design: `START_TRAINING`
  answers 501 with `{"status": "refused", "reason": ...}` (Label Studio shows the reason
  when "Start training" is pressed); other events (ANNOTATION_CREATED, ...) answer 200
  `{"status": "ignored"}`. Retrain with `pull` + `python -m training.run`, then restart
  the backend with the new model directory.
- `GET /versions` -> `{"versions": [model_version]}`; `POST /validate` checks a config
  (`{"config": xml}`; 422 when the model's labels are missing from it).

Every error is JSON `{"error": "..."}`: 400 for a body that is empty, not JSON, nested too
deeply, not an object, or has a field of the wrong type; 413 for a body over the size limit
(`max_bytes`, 8 MiB by default); 404/405 for unknown routes and methods; 500 (logged) else.
The server listens on 127.0.0.1 unless told otherwise: it has no authentication.
The `access_token` Label Studio sends to /setup is never stored or logged.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
from pathlib import Path
from typing import Any

from ..text.schema import LabelSchema
from .errors import StudioError
from .sync import entities_to_result, missing_labels, schema_from_xml, task_score

log = logging.getLogger("training.studio.backend")

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_HOST = "127.0.0.1"

REFUSAL = ("retraining from Label Studio is not supported by this backend: run "
           "`python -m training.studio pull`, then `python -m training.run --set data.train=annotations/pulled_export.json`, "
           "and restart `python -m training.studio backend` with the new model directory")


class RequestProblem(Exception):
    """A request refused with `status` and the JSON body `{"error": message}`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _error(message: str, status: int):
    from flask import jsonify

    return jsonify({"error": message}), status


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MiB ({limit} bytes)" if limit >= 1024 * 1024 else f"{limit} bytes"


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def json_object() -> dict:
    """The request body as a JSON object (whatever its Content-Type), or RequestProblem (400).
    Reading it past MAX_CONTENT_LENGTH raises werkzeug's RequestEntityTooLarge (413)."""
    from flask import request

    data = request.get_data(cache=True)
    if not data.strip():
        raise RequestProblem("empty request body: expected a JSON object")
    try:
        payload = json.loads(data)
    except RecursionError:
        raise RequestProblem("the JSON body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise RequestProblem(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestProblem(f"expected a JSON object, got {_type_name(payload)}")
    return payload


def request_schema(payload: dict, field: str, invalid_status: int = 400) -> LabelSchema:
    """The labeling config in `payload[field]` (the default schema when absent or empty);
    400 when it is not a string, `invalid_status` when it does not parse."""
    label_config = payload.get(field)
    if label_config is None:
        return LabelSchema()
    if not isinstance(label_config, str):
        raise RequestProblem(f'"{field}" must be a string (a labeling config in XML), got {_type_name(label_config)}')
    if not label_config.strip():
        return LabelSchema()
    try:
        return schema_from_xml(label_config, "labeling config")
    except StudioError as exc:
        raise RequestProblem(str(exc), invalid_status) from None


def request_texts(payload: dict, schema: LabelSchema) -> list[str]:
    tasks = payload.get("tasks")
    if not isinstance(tasks, list):
        raise RequestProblem('expected a JSON object with a "tasks" list')
    texts = []
    for index, task in enumerate(tasks):
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(schema.text_key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            task_id = task.get("id") if isinstance(task, dict) else None
            raise RequestProblem(f"task #{index} (id {task_id!r}) has no string data.{schema.text_key}")
        texts.append(text)
    return texts


class Backend:
    """The endpoints, over one model. Only `predict` takes the lock: /health never waits."""

    def __init__(self, model):
        self.model = model
        self.version = Path(model.path).name
        self.labels = list(model.labels)
        self.predict_lock = threading.Lock()  # one forward pass at a time (torch threads are shared)

    def config_problem(self, schema: LabelSchema) -> str | None:
        missing = missing_labels(schema, self.labels)
        if missing:
            return (f"the labeling config lacks label(s) {', '.join(missing)} that model {self.version} predicts "
                    f"(config labels: {', '.join(schema.labels)})")
        return None

    def health(self):
        return {"status": "UP", "model_class": "NerModel", "model_version": self.version, "labels": self.labels}

    def versions(self):
        return {"versions": [self.version]}

    def setup(self):
        problem = self.config_problem(request_schema(json_object(), "schema"))
        if problem:
            raise RequestProblem(problem)
        return {"model_version": self.version}

    def validate(self):
        problem = self.config_problem(request_schema(json_object(), "config", invalid_status=422))
        if problem:
            raise RequestProblem(problem, 422)
        return {"status": "ok"}

    def predict(self):
        payload = json_object()
        schema = request_schema(payload, "label_config")
        texts = request_texts(payload, schema)
        with self.predict_lock:
            predicted = self.model.predict(texts)
        results = []
        for entities in predicted:
            kept = [e for e in entities if e.label in schema.labels]
            results.append({"result": entities_to_result(kept, schema), "score": task_score(kept),
                            "model_version": self.version})
        return {"results": results, "model_version": self.version}

    def webhook(self):
        action = json_object().get("action")
        if action == "START_TRAINING":
            log.info("refused a START_TRAINING webhook")
            return {"status": "refused", "action": action, "reason": REFUSAL, "error": REFUSAL}, 501
        return {"status": "ignored", "action": action, "reason": "this backend does not train on annotation events"}

    def routes(self):
        return [("/", "GET", self.health), ("/health", "GET", self.health), ("/versions", "GET", self.versions),
                ("/setup", "POST", self.setup), ("/validate", "POST", self.validate),
                ("/predict", "POST", self.predict), ("/webhook", "POST", self.webhook)]


def register_errors(app, max_bytes: int) -> None:
    """JSON bodies for every error, the 413 saying the limit."""
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

    def refused(exc: RequestProblem):
        return _error(exc.message, exc.status)

    def too_large(exc):
        return _error(f"the request body is larger than this backend's limit of {_size(max_bytes)}: "
                      "send fewer or shorter tasks per request", 413)

    def http_error(exc: HTTPException):  # 404, 405 (its Allow header kept), ...
        response = exc.get_response()
        response.set_data(json.dumps({"error": exc.description or exc.name}))
        response.content_type = "application/json"
        return response

    def unexpected(exc: Exception):
        log.exception("error while answering a request")
        return _error(f"internal error ({type(exc).__name__}); see the backend's log", 500)

    app.register_error_handler(RequestProblem, refused)
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)


def create_app(model, max_bytes: int = DEFAULT_MAX_BYTES):
    """A Flask app serving `model` (a NerModel, or the path of an exported model); request
    bodies over `max_bytes` are refused with 413."""
    from flask import Flask

    if not hasattr(model, "predict"):
        from ..inference import load_model

        model = load_model(model)
    backend = Backend(model)
    app = Flask("training.studio.backend")
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    register_errors(app, max_bytes)
    for rule, method, view in backend.routes():
        app.add_url_rule(rule, endpoint=view.__name__, view_func=view, methods=[method])
    return app


def make_backend_server(model, host: str = DEFAULT_HOST, port: int = 9090, max_bytes: int = DEFAULT_MAX_BYTES):
    """A threaded werkzeug server (one thread per request) for `model`; port 0 picks a free one."""
    from werkzeug.serving import make_server

    return make_server(host, port, create_app(model, max_bytes), threaded=True)


def serve_backend(model_dir: str | Path, host: str = DEFAULT_HOST, port: int = 9090,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    from ..inference import ModelLoadError, load_model
    from .client import DEFAULT_PROJECT

    try:
        model = load_model(model_dir)
    except ModelLoadError as exc:
        raise StudioError(str(exc)) from None
    server = make_backend_server(model, host, port, max_bytes)
    url = f"http://{host}:{server.server_port}"
    print(f"ML backend for model {Path(model.path).name} listening on {url} (connect it with: python -m "
          f"training.studio connect --project {shlex.quote(DEFAULT_PROJECT)} --backend-url {url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
