"""An ML backend for Label Studio built on `predict()` (Flask; the same HTTP protocol as
label-studio-ml 1.x, without its Flask 1.x pin).

Endpoints (what Label Studio calls):
- `GET /health`  -> `{"status": "UP", "model_class": ..., "model_version": ...}`
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
- `GET /versions` -> `{"versions": [model_version]}`; `POST /validate` checks a config.

The `access_token` Label Studio sends to /setup is never stored or logged.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..text.schema import LabelSchema
from .sync import entities_to_result, missing_labels, schema_from_xml, task_score
from .errors import StudioError

log = logging.getLogger("training.studio.backend")

REFUSAL = ("retraining from Label Studio is not supported by this backend: run "
           "`python -m training.studio pull`, then `python -m training.run --set data.train=annotations/pulled_export.json`, "
           "and restart `python -m training.studio backend` with the new model directory")


def _schema(label_config: Any) -> LabelSchema:
    if isinstance(label_config, str) and label_config.strip():
        return schema_from_xml(label_config, "labeling config")
    return LabelSchema()


def create_app(model):
    """A Flask app serving `model` (a NerModel, or the path of an exported model)."""
    from flask import Flask, jsonify, request

    if not hasattr(model, "predict"):
        from ..inference import load_model

        model = load_model(model)
    version = Path(model.path).name
    lock = threading.Lock()  # one forward pass at a time (torch threads are shared)
    app = Flask("training.studio.backend")

    def error(message: str, status: int = 400):
        return jsonify({"status": "error", "error": message}), status

    def config_problem(label_config: Any) -> tuple[LabelSchema | None, str | None]:
        try:
            schema = _schema(label_config)
        except StudioError as exc:
            return None, str(exc)
        missing = missing_labels(schema, model.labels)
        if missing:
            return schema, (f"the labeling config lacks label(s) {', '.join(missing)} that model {version} predicts "
                            f"(config labels: {', '.join(schema.labels)})")
        return schema, None

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify({"status": "UP", "model_class": "NerModel", "model_version": version,
                        "labels": list(model.labels)})

    @app.get("/versions")
    def versions():
        return jsonify({"versions": [version]})

    @app.post("/setup")
    def setup():
        payload = request.get_json(silent=True) or {}
        _, problem = config_problem(payload.get("schema"))
        if problem:
            return error(problem)
        return jsonify({"model_version": version})

    @app.post("/validate")
    def validate():
        payload = request.get_json(silent=True) or {}
        _, problem = config_problem(payload.get("config"))
        return error(problem, 422) if problem else jsonify({"status": "ok"})

    @app.post("/predict")
    def predict():
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("tasks"), list):
            return error('expected a JSON object with a "tasks" list')
        try:
            schema = _schema(payload.get("label_config"))
        except StudioError as exc:
            return error(str(exc))
        texts = []
        for index, task in enumerate(payload["tasks"]):
            data = task.get("data") if isinstance(task, dict) else None
            text = data.get(schema.text_key) if isinstance(data, dict) else None
            if not isinstance(text, str):
                return error(f"task #{index} (id {task.get('id') if isinstance(task, dict) else None}) has no "
                             f"string data.{schema.text_key}")
            texts.append(text)
        with lock:
            predicted = model.predict(texts)
        results = []
        for entities in predicted:
            kept = [e for e in entities if e.label in schema.labels]
            results.append({"result": entities_to_result(kept, schema), "score": task_score(kept),
                            "model_version": version})
        return jsonify({"results": results, "model_version": version})

    @app.post("/webhook")
    def webhook():
        payload = request.get_json(silent=True) or {}
        action = payload.get("action")
        if action == "START_TRAINING":
            log.info("refused a START_TRAINING webhook")
            return jsonify({"status": "refused", "action": action, "reason": REFUSAL}), 501
        return jsonify({"status": "ignored", "action": action,
                        "reason": "this backend does not train on annotation events"}), 200

    return app


def serve_backend(model_dir: str | Path, host: str = "127.0.0.1", port: int = 9090) -> None:
    from werkzeug.serving import make_server

    from ..inference import ModelLoadError, load_model

    try:
        model = load_model(model_dir)
    except ModelLoadError as exc:
        raise StudioError(str(exc)) from None
    server = make_server(host, port, create_app(model), threaded=True)
    print(f"ML backend for model {Path(model.path).name} listening on http://{host}:{port} "
          f"(connect it with: python -m training.studio connect --backend-url http://{host}:{port})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
