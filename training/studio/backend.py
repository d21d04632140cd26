"""An ML backend for Label Studio built on `predict()` (Flask; the same HTTP protocol as
label-studio-ml 1.x, without its Flask 1.x pin), and, when started with a run config,
retraining from Label Studio with versions and a gate (retrain.py, versions.py).

Endpoints (what Label Studio calls):
- `GET /health`  -> `{"status": "UP", "model_class", "model_version", "labels", ...}`; it takes no
  lock, so it answers at once while a long `/predict` runs (the server is threaded). With
  retraining: `"training"` (the latest job: state queued/pulling/training/evaluating/done/
  refused/failed, epoch/epochs, elapsed_s, message, and the gate's decision), `"current"` (the
  version the pointer names) and `"retraining"` (config, --retrain-every, events counted).
- `POST /setup`  (`{"project", "schema", "hostname", "access_token", ...}`) -> `{"model_version"}`;
  400 when the project's labeling config lacks one of the model's labels.
- `POST /predict` (`{"tasks": [{"id", "data": {"text": ...}}], "label_config", "project", "params"}`)
  -> `{"results": [{"result": [...], "score", "model_version"}, ...], "model_version"}`, one
  prediction per task, in task order. Result items are those of a manual annotation
  (`from_name`/`to_name` from the request's labeling config, `type: labels`,
  `value {start, end, text, labels}`) plus a per-span `score`; entities whose label the
  request's config does not define are left out. `model_version` is the version served.
- `POST /webhook`: `START_TRAINING` (what Label Studio 1.23 sends for "Start training":
  `{"action": "START_TRAINING", "project": <the project as its webhook serializer gives it>}`)
  starts a retraining job in a separate process and answers at once `{"status": "started",
  "job"}` (`"busy"` with the running job when one runs). ANNOTATION_CREATED /
  ANNOTATIONS_CREATED / ANNOTATION_UPDATED are counted per project, and start a job every
  `--retrain-every` N events (off by default: `{"status": "ignored"}`). Without a run config
  (`--config`) START_TRAINING answers 501 `{"status": "refused", "reason": ...}` (Label Studio
  shows the reason).
- `POST /job_status` (`{"job"}`) -> `{"job_status": queued|started|finished|failed, ...}` (Label
  Studio's MLBackendTrainJob asks it); 410 for an unknown job.
- `GET /versions` -> `{"versions": [names], "current", "details": [{version, created, metrics,
  gate, current}], "held_out"}` (`versions` is the list Label Studio shows); `POST /validate`
  checks a config (`{"config": xml}`; 422 when the model's labels are missing from it).

Versions: with a version store (`--models DIR`, versions.py) the backend serves the version
DIR/current names and checks that pointer (one stat) before each request but /health, so a
new version accepted by the gate, or a rollback (`python -m training.studio rollback`), is
served from the next request on, without a restart. A version that fails to load is
reported in /health and the previous one stays served.

Every error is JSON `{"error": "..."}`: 400 for a body that is empty, not JSON, nested too
deeply, not an object, or has a field of the wrong type; 413 for a body over the size limit
(`max_bytes`, 8 MiB by default); 404/405 for unknown routes and methods; 500 (logged) else.
The server listens on 127.0.0.1 unless told otherwise: it has no authentication.
The `access_token` Label Studio sends to /setup is never stored or logged; jobs reach Label
Studio with LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY from the backend's environment.
"""

from __future__ import annotations

import json
import logging
import shlex
import signal
import threading
from pathlib import Path
from typing import Any

from ..text.schema import LabelSchema
from .errors import StudioError
from .retrain import ANNOTATION_ACTIONS, Retrainer
from .sync import entities_to_result, missing_labels, schema_from_xml, task_score
from .versions import GATE_RULE, VersionStore

log = logging.getLogger("training.studio.backend")

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_HOST = "127.0.0.1"

REFUSAL = ("this backend was started without a run config, so it does not retrain: restart it with "
           "`python -m training.studio backend --model DIR --config configs/tiny.yaml`, or run "
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
    """The endpoints, over one served model. Only `predict` takes the predict lock, and only
    a version switch the reload lock: /health never waits."""

    def __init__(self, model, store=None, retrainer=None, loader=None, version: str | None = None):
        self.serving = (version or Path(model.path).name, model)  # replaced whole on a switch
        self.store = store  # versions.VersionStore, or None: one fixed model
        self.retrainer = retrainer  # retrain.Retrainer, or None: START_TRAINING is refused
        self.loader = loader
        self.predict_lock = threading.Lock()  # one forward pass at a time (torch threads are shared)
        self.reload_lock = threading.Lock()
        self.stamp = store.stamp() if store is not None else None
        self.load_error: str | None = None

    @property
    def version(self) -> str:
        return self.serving[0]

    @property
    def model(self):
        return self.serving[1]

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    def refresh(self, *_) -> None:
        """Serve the version `current` names, if it changed (one stat when it did not)."""
        if self.store is None or self.store.stamp() == self.stamp:
            return
        with self.reload_lock:
            stamp = self.store.stamp()
            if stamp == self.stamp:
                return
            try:
                name = self.store.current()
                if name is not None and name != self.version:
                    model = self.loader(self.store.path(name))
                    before, self.serving = self.version, (name, model)
                    log.info("now serving %s (was %s)", name, before)
                self.load_error = None
            except Exception as exc:  # noqa: BLE001 - keep serving the loaded version, say why
                self.load_error = f"cannot serve the version {self.store.pointer_path()} names: {exc}"
                log.error("%s; still serving %s", self.load_error, self.version)
            self.stamp = stamp

    def config_problem(self, schema: LabelSchema) -> str | None:
        missing = missing_labels(schema, self.labels)
        if missing:
            return (f"the labeling config lacks label(s) {', '.join(missing)} that model {self.version} predicts "
                    f"(config labels: {', '.join(schema.labels)})")
        return None

    def health(self):
        body = {"status": "UP", "model_class": "NerModel", "model_version": self.version, "labels": self.labels}
        if self.store is not None:
            try:
                body["current"] = self.store.current()
            except StudioError as exc:
                body["current"], body["load_error"] = None, str(exc)
            if self.load_error:
                body["load_error"] = self.load_error
            body["models"] = str(self.store.root)
        if self.retrainer is not None:
            body["training"] = self.retrainer.status()
            body["retraining"] = self.retrainer.describe()
        return body

    def versions(self):
        if self.store is None:
            return {"versions": [self.version], "current": self.version, "details": []}
        details = self.store.listing()
        return {"versions": [row["version"] for row in details], "current": self.store.current(),
                "serving": self.version, "details": details, "held_out": self.store.holdouts(),
                "gate_rule": GATE_RULE}

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
        version, model = self.serving
        with self.predict_lock:
            predicted = model.predict(texts)
        results = []
        for entities in predicted:
            kept = [e for e in entities if e.label in schema.labels]
            results.append({"result": entities_to_result(kept, schema), "score": task_score(kept),
                            "model_version": version})
        return {"results": results, "model_version": version}

    def webhook(self):
        payload = json_object()
        action = payload.get("action")
        project = payload.get("project")
        if action == "START_TRAINING":
            if self.retrainer is None:
                log.info("refused a START_TRAINING webhook (no run config)")
                return {"status": "refused", "action": action, "reason": REFUSAL, "error": REFUSAL}, 501
            if not isinstance(project, dict) or not isinstance(project.get("id"), int):
                raise RequestProblem('START_TRAINING needs "project": {"id": <int>, ...} (as Label Studio sends it)')
            status, started = self.retrainer.start(project, "START_TRAINING")
            return {"status": "started" if started else "busy", "action": action, "job": status.get("job"),
                    "job_status": status.get("state"), "model_version": self.version,
                    **({} if started else {"reason": f"job {status.get('job')} is {status.get('state')}; "
                                                     "this request joins it"})}
        if action in ANNOTATION_ACTIONS and self.retrainer is not None and isinstance(project, dict):
            annotation = payload.get("annotation")
            count = len(annotation) if isinstance(annotation, list) else 1
            return {"action": action, **self.retrainer.annotation_event(project, count)}
        return {"status": "ignored", "action": action,
                "reason": "this backend does not train on this event (retraining on annotation events: "
                          "--config and --retrain-every N)"}

    def job_status(self):
        job = json_object().get("job")
        status = self.retrainer.status(job) if self.retrainer is not None and isinstance(job, str) \
            and job.startswith("job-") and "/" not in job else None
        if status is None:
            return {"error": f"no training job {job!r}"}, 410
        return {"job_status": status["label_studio_status"], "job": job, "state": status.get("state"),
                "message": status.get("message"), "version": status.get("version")}

    def routes(self):
        return [("/", "GET", self.health), ("/health", "GET", self.health), ("/versions", "GET", self.versions),
                ("/setup", "POST", self.setup), ("/validate", "POST", self.validate),
                ("/predict", "POST", self.predict), ("/webhook", "POST", self.webhook),
                ("/job_status", "POST", self.job_status)]


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


def create_app(model, max_bytes: int = DEFAULT_MAX_BYTES, store: VersionStore | None = None,
               retrainer: Retrainer | None = None, loader=None):
    """A Flask app serving `model` (a NerModel, or the path of an exported model); request
    bodies over `max_bytes` are refused with 413. With `store` (and the `loader` that loads
    one of its versions), `model` is its current version and switches follow the pointer;
    with `retrainer`, START_TRAINING and annotation events start jobs."""
    from flask import Flask

    from ..inference import load_model

    if not hasattr(model, "predict"):
        model = load_model(model)
    version = store.current() if store is not None else None
    backend = Backend(model, store, retrainer, loader or load_model, version)
    if retrainer is not None:
        retrainer.on_finish = backend.refresh
    app = Flask("training.studio.backend")
    app.config["MAX_CONTENT_LENGTH"] = max_bytes
    app.extensions["vi_news_ner_backend"] = backend
    register_errors(app, max_bytes)

    @app.before_request
    def follow_the_pointer():  # a new or rolled-back version, from this request on; /health never waits
        from flask import request

        if request.endpoint not in ("health", None):
            backend.refresh()

    for rule, method, view in backend.routes():
        app.add_url_rule(rule, endpoint=view.__name__, view_func=view, methods=[method])
    return app


def make_backend_server(model, host: str = DEFAULT_HOST, port: int = 9090, max_bytes: int = DEFAULT_MAX_BYTES,
                        **options):
    """A threaded werkzeug server (one thread per request) for `model`; port 0 picks a free one.
    `options` go to create_app (store, retrainer, loader)."""
    from werkzeug.serving import make_server

    return make_server(host, port, create_app(model, max_bytes, **options), threaded=True)


def default_store(model_dir: str | Path) -> Path:
    """Where the versions of `model_dir` go unless --models says: `<model dir>-versions` beside it."""
    model_dir = Path(model_dir)
    return model_dir.with_name(model_dir.name + "-versions")


def open_store(store_dir: str | Path, model_dir: str | Path | None) -> VersionStore:
    """The version store, seeded with `model_dir` as v0001 when it is empty; a store without a
    pointer (an interrupted seeding) points at its newest version the gate accepted."""
    from ..model.artifact import ModelLoadError, check_model_dir

    store = VersionStore(store_dir)
    if not store.names():
        if model_dir is None:
            raise StudioError(f"{store.root} holds no model version: give --model to seed it")
        try:  # a store seeded with a broken model would keep serving it as its only version
            check_model_dir(Path(model_dir))
        except ModelLoadError as exc:
            raise StudioError(f"--model: {exc}") from None
        name = store.import_model(model_dir)
        log.warning("seeded the version store %s with %s as %s", store.root, model_dir, name)
    elif store.current() is None:
        accepted = [n for n in store.names() if (store.record(n).get("gate") or {}).get("accepted", True)]
        with store.lock():
            store.set_current((accepted or store.names())[-1])
    return store


def load_retraining(config: str | Path, overrides: list[str], store: VersionStore,
                    retrain_every: int | None) -> Retrainer:
    """A Retrainer for `config` (validated now, so a bad config fails at start, not on the
    first "Start training") reaching Label Studio with LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY."""
    from ..train.config import ConfigError, load_config
    from .client import resolve_token, resolve_url

    try:
        run_config = load_config(config, list(overrides))
    except (ConfigError, OSError, ValueError) as exc:
        raise StudioError(f"--config {config}: {' '.join(str(exc).split())}") from None
    if not run_config.data.labeling_config:
        raise StudioError(f"--config {config}: data.labeling_config is empty; retraining validates Label Studio's "
                          "export against it")
    if retrain_every is not None and retrain_every < 1:
        raise StudioError(f"--retrain-every must be at least 1, got {retrain_every}")
    return Retrainer(store, config, list(overrides), resolve_url(None), resolve_token(None), retrain_every)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve_backend(model_dir: str | Path | None, host: str = DEFAULT_HOST, port: int = 9090,
                  max_bytes: int = DEFAULT_MAX_BYTES, config: str | Path | None = None,
                  overrides: list[str] = (), store_dir: str | Path | None = None,
                  retrain_every: int | None = None) -> None:
    """Serve `model_dir`; with `config` (retraining) or `store_dir`, serve a version store
    (default `<model dir>-versions`, seeded with `model_dir`)."""
    from ..inference import ModelLoadError, load_model
    from .client import DEFAULT_PROJECT

    if retrain_every is not None and config is None:
        raise StudioError("--retrain-every needs --config (the run config to retrain with)")
    store = retrainer = None
    if config is not None or store_dir is not None:
        if store_dir is None and model_dir is None:
            raise StudioError("give --model (the model to start from) or --models (a version store)")
        store = open_store(store_dir or default_store(model_dir), model_dir)
        if config is not None:
            retrainer = load_retraining(config, list(overrides), store, retrain_every)
        model_dir = store.path(store.current())
    try:
        model = load_model(model_dir)
    except ModelLoadError as exc:
        raise StudioError(str(exc)) from None
    server = make_backend_server(model, host, port, max_bytes, store=store, retrainer=retrainer)
    url = f"http://{host}:{server.server_port}"
    served = f"version {store.current()} of {store.root}" if store is not None else Path(model.path).name
    print(f"ML backend for model {served} listening on {url} (connect it with: python -m "
          f"training.studio connect --project {shlex.quote(DEFAULT_PROJECT)} --backend-url {url})", flush=True)
    if retrainer is not None:
        when = (f"on START_TRAINING and every {retrain_every} annotation event(s)" if retrain_every
                else "on START_TRAINING (\"Start training\" in the project's Model settings)")
        sets = "".join(f" --set {shlex.quote(o)}" for o in retrainer.overrides)
        print(f"retraining with {retrainer.config}{sets} {when}; versions in {store.root}", flush=True)
    logging.getLogger("training.studio").setLevel(logging.INFO)  # jobs started/ended, versions switched
    signal.signal(signal.SIGTERM, _interrupt)  # stop a running job too
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if retrainer is not None:
            retrainer.stop()
