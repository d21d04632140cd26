"""A thin wrapper over label-studio-sdk (>= 1.0 client API: `LabelStudio`) for the
push / pull / preannotate / connect commands.

Every SDK call goes through `Studio._call`, which turns the SDK's failures into one-line
`StudioError`s: an unreachable server, a refused token, or any other API answer.
The token is sent in a header only; it is never printed or written anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..common.atomic import atomic_file
from .errors import StudioError
from .sync import (ExportDiff, diff_corpora, entities_to_result, load_tasks, missing_labels, new_tasks,
                   schema_from_xml, task_key, task_score)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_PROJECT = "vi-news-ner"
DEFAULT_CONFIG = "annotations/labeling_config.xml"
DEFAULT_TASKS = "annotations/tasks.json"
DEFAULT_PULL = "annotations/pulled_export.json"
UNCERTAINTY_SAMPLING = "Uncertainty sampling"


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("LABEL_STUDIO_URL") or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str:
    token = token or os.environ.get("LABEL_STUDIO_API_KEY")
    if not token:
        raise StudioError("no API token: set LABEL_STUDIO_API_KEY (or pass --token)")
    return token


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("detail", "validation_errors", "error", "message"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return json.dumps(body, ensure_ascii=False)[:300]
    return str(body)[:300]


@dataclass
class PushReport:
    project_id: int
    created: bool
    config_updated: bool
    imported: int
    skipped: int


@dataclass
class PullReport:
    project_id: int
    path: Path
    tasks: int
    spans: int
    diff: ExportDiff
    warnings: list[str] = field(default_factory=list)


@dataclass
class PreannotateReport:
    project_id: int
    model_version: str
    predicted: list[tuple[int, float, int]]  # (task id, task score, entity count)
    skipped: int
    ordered: bool


class Studio:
    """One Label Studio server, reached with one token."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60.0):
        from label_studio_sdk import LabelStudio

        self.url = resolve_url(url)
        self.client = LabelStudio(base_url=self.url, api_key=resolve_token(token), timeout=timeout, max_retries=0)

    # -- errors ---------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args, **kwargs):
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except httpx.InvalidURL as exc:
            raise StudioError(f"{self.url} is not a usable Label Studio URL ({exc}); set LABEL_STUDIO_URL / --url, "
                              "for example http://127.0.0.1:8080") from None
        except httpx.TransportError as exc:
            raise StudioError(
                f"cannot reach Label Studio at {self.url} ({type(exc).__name__}: {exc}); "
                "is it running? (python -m training.studio serve; or set LABEL_STUDIO_URL / --url)") from None
        except ApiError as exc:
            if exc.status_code == 401:
                raise StudioError(
                    f"Label Studio at {self.url} refused the API token ({exc.status_code}: {_detail(exc.body)}); "
                    "check LABEL_STUDIO_API_KEY / --token") from None
            detail = _detail(exc.body)
            if "reserved network address" in detail:
                detail += (" (Label Studio's SSRF protection blocks local ML backends: start it with "
                           "`python -m training.studio serve`, or set ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false)")
            raise StudioError(f"{what}: Label Studio answered {exc.status_code}: {detail}") from None

    def check(self) -> str:
        """Fail early on a bad URL or token; returns the user's e-mail."""
        return self._call("checking the token", self.client.users.whoami).email

    # -- projects ---------------------------------------------------------------------------
    def find_project(self, title: str):
        projects = self._call(f"listing projects titled {title!r}",
                              lambda: [p for p in self.client.projects.list(title=title) if p.title == title])
        return min(projects, key=lambda p: p.id) if projects else None

    def get_project(self, title: str):
        found = self.find_project(title)
        if found is None:
            raise StudioError(f"no project titled {title!r} at {self.url}; create it with `python -m training.studio push --project {title!r}`")
        return self._call(f"reading project {title!r}", self.client.projects.get, found.id)

    def project_schema(self, project, needed: Sequence[str], needed_from: str):
        """The project's label schema; it must hold every label in `needed`."""
        where = f"project {project.title!r} (id {project.id})"
        schema = schema_from_xml(project.label_config or "", where)
        missing = missing_labels(schema, needed)
        if missing:
            raise StudioError(
                f"{where}: its labeling config lacks label(s) {', '.join(missing)} that {needed_from} uses "
                f"(project labels: {', '.join(schema.labels)}); update it with `python -m training.studio push`")
        return schema

    def ensure_project(self, title: str, label_config: str) -> tuple[Any, bool, bool]:
        """Create the project, or set its labeling config; returns (project, created, config_updated)."""
        if len(title) < 3:
            raise StudioError(f"project title {title!r} is too short: Label Studio needs at least 3 characters")
        project = self.find_project(title)
        if project is None:
            created = self._call(f"creating project {title!r}", self.client.projects.create,
                                 title=title, label_config=label_config)
            return created, True, False
        project = self._call(f"reading project {title!r}", self.client.projects.get, project.id)
        if (project.label_config or "").strip() == label_config.strip():
            return project, False, False
        self._call(f"updating the labeling config of project {title!r}", self.client.projects.update,
                   project.id, label_config=label_config)
        return project, False, True

    def tasks(self, project_id: int) -> list:
        return self._call("listing tasks", lambda: list(self.client.tasks.list(project=project_id, fields="all")))

    # -- push -------------------------------------------------------------------------------
    def push(self, title: str, config_path: str | Path, task_paths: Sequence[str | Path]) -> PushReport:
        from ..text.schema import read_labeling_config

        config_path = Path(config_path)
        try:
            schema = read_labeling_config(config_path)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        tasks = load_tasks(task_paths, schema.text_key)
        project, created, updated = self.ensure_project(title, config_path.read_text(encoding="utf-8"))
        existing = {task_key(t.data or {}, schema.text_key) for t in self.tasks(project.id)}
        fresh, skipped = new_tasks(tasks, existing, schema.text_key)
        if fresh:
            self._call(f"importing {len(fresh)} task(s)", self.client.projects.import_tasks,
                       project.id, request=fresh, return_task_ids=True)
        return PushReport(project.id, created, updated, len(fresh), skipped)

    # -- pull -------------------------------------------------------------------------------
    def export_json(self, project_id: int, all_tasks: bool = False) -> Any:
        def download() -> bytes:
            chunks = self.client.projects.exports.download_sync(
                project_id, export_type="JSON", download_all_tasks=all_tasks)
            return b"".join(chunks) if not isinstance(chunks, (bytes, bytearray)) else bytes(chunks)

        raw = self._call("exporting annotations", download)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StudioError(f"the export of project {project_id} is not JSON ({exc}); nothing written") from None

    def pull(self, title: str, config_path: str | Path, out: str | Path, all_tasks: bool = False) -> PullReport:
        from ..data.readers import AnnotationError, read_corpus
        from ..text.schema import read_labeling_config

        try:
            schema = read_labeling_config(config_path)
        except ValueError as exc:
            raise StudioError(str(exc)) from None
        project = self.get_project(title)
        self.project_schema(project, schema.labels, str(config_path))
        tasks = self.export_json(project.id, all_tasks)
        if not isinstance(tasks, list):
            raise StudioError(f"the export of project {title!r} is not a list of tasks; nothing written")
        if not any(t.get("annotations") for t in tasks if isinstance(t, dict)):
            raise StudioError(f"project {title!r} (id {project.id}) has no annotated task yet; nothing written to {out}")
        out = Path(out)
        with atomic_file(out) as staging:
            staging.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            try:
                corpus = read_corpus(staging, fmt="labelstudio", schema=schema)
            except AnnotationError as exc:
                rejected = out.with_name(out.stem + ".rejected.json")
                rejected.write_text(staging.read_text(encoding="utf-8"), encoding="utf-8")
                first = exc.problems[0].replace(str(staging), "export")
                raise StudioError(
                    f"the export of project {title!r} does not validate against {config_path} "
                    f"({len(exc.problems)} problem(s); first: {first}); {out} left unchanged, "
                    f"rejected export kept in {rejected}") from None
            previous = []
            if out.exists():
                try:
                    previous = read_corpus(out, fmt="labelstudio", schema=schema).documents
                except AnnotationError:
                    previous = []
        diff = diff_corpora(previous, corpus.documents)
        return PullReport(project.id, out, len(corpus.documents), sum(len(d.spans) for d in corpus.documents),
                          diff, corpus.warnings)

    # -- preannotate ------------------------------------------------------------------------
    def preannotate(self, title: str, model, order_by_uncertainty: bool = False,
                    batch_size: int = 16) -> PreannotateReport:
        """Predictions from `model` (a NerModel) for every task with no annotation and no
        prediction of this model version yet."""
        version = Path(model.path).name
        project = self.get_project(title)
        schema = self.project_schema(project, model.labels, f"model {version}")
        todo, skipped = [], 0
        for task in self.tasks(project.id):
            unlabelled = not (task.total_annotations or task.cancelled_annotations or task.annotations)
            versions = set(task.predictions_model_versions or [])
            versions |= {p.get("model_version") if isinstance(p, dict) else getattr(p, "model_version", None)
                         for p in task.predictions or []}
            done = version in versions
            text = (task.data or {}).get(schema.text_key)
            if not unlabelled or done or not isinstance(text, str):
                skipped += 1
                continue
            todo.append((task.id, text))
        predicted = []
        for begin in range(0, len(todo), batch_size):
            batch = todo[begin:begin + batch_size]
            for (task_id, _), entities in zip(batch, model.predict([text for _, text in batch])):
                score = task_score(entities)
                self._call(f"uploading the prediction of task {task_id}", self.client.predictions.create,
                           task=task_id, result=entities_to_result(entities, schema), score=score,
                           model_version=version)
                predicted.append((task_id, score, len(entities)))
        update = {"model_version": version}
        if order_by_uncertainty:
            update["sampling"] = UNCERTAINTY_SAMPLING
        self._call(f"setting the model version of project {title!r}", self.client.projects.update,
                   project.id, **update)
        predicted.sort(key=lambda item: (item[1], item[0]) if order_by_uncertainty else item[0])
        return PreannotateReport(project.id, version, predicted, skipped, order_by_uncertainty)

    # -- ML backend -------------------------------------------------------------------------
    def connect_backend(self, title: str, backend_url: str, backend_title: str = "vi-news-ner predict()") -> tuple[int, bool]:
        """Attach (or re-attach) an ML backend to the project; returns (backend id, created).
        Label Studio checks the backend itself (/health, /setup) before accepting it."""
        project = self.get_project(title)
        backend_url = backend_url.rstrip("/")
        backends = self._call("listing ML backends", self.client.ml.list, project=project.id)
        same = [b for b in backends if (b.url or "").rstrip("/") == backend_url]
        if same:
            self._call(f"updating ML backend {backend_url}", self.client.ml.update, same[0].id,
                       url=backend_url, project=project.id, title=backend_title)
            return same[0].id, False
        created = self._call(f"connecting ML backend {backend_url}", self.client.ml.create,
                             project=project.id, url=backend_url, title=backend_title, is_interactive=False)
        return created.id, True
