"""Retraining from Label Studio: one job at a time, each in its own process.

The backend (`Retrainer`, in the backend's process) starts a job when Label Studio sends
START_TRAINING ("Start training" in the project's Model settings) or, with
`--retrain-every N`, after N annotation events (ANNOTATION_CREATED / ANNOTATIONS_CREATED /
ANNOTATION_UPDATED) of a project. A job is `python -m training.studio.retrain JOB_DIR`
(`run_job`), a separate process in its own session, so training never blocks /predict
(which keeps serving the current version) and a killed job (even `kill -9`) changes
nothing that is served: the backend notices the exit and marks the job failed.

What a job does, its state written to JOB_DIR/status.json (atomically) at each step:
  pulling     export the project's annotated tasks through the SDK (LABEL_STUDIO_URL and
              LABEL_STUDIO_API_KEY come from the backend's environment, never from a file
              or the command line) and validate them with the project's readers against the
              run config's labeling config;
  training    split off the project's held-out tasks (versions.py: chosen once, stored),
              train with the backend's run config (`--config`/`--set`) on the others
              (data.train = the rest, data.test = the held-out tasks), progress per epoch;
  evaluating  score the new model and the current version on the held-out tasks with
              `evaluate_documents`, publish the new version (whole, by one rename) with its
              metrics and the gate's decision, and move `current` iff the gate accepts;
  done | refused | failed   switched | kept the current version (the reason is in
              status.json, /health, /versions and the logs) | an error, or the process died.

JOB_DIR holds job.json (what to do), status.json, train.log (the process's output) and the
pulled export split into train.json / heldout.json; checkpoints are removed at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from ..common.atomic import atomic_file, pid_alive, write_json
from .errors import StudioError
from .versions import GATE_RULE, VersionStore, gate, now_iso, summary_metrics

log = logging.getLogger("training.studio.retrain")

STATES = ("queued", "pulling", "training", "evaluating", "done", "refused", "failed")
TERMINAL = ("done", "refused", "failed")
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")
# Label Studio's MLBackendTrainJob asks /job_status and counts 'queued'/'started' as running
LABEL_STUDIO_JOB_STATUS = {"queued": "queued", "pulling": "started", "training": "started",
                           "evaluating": "started", "done": "finished", "refused": "finished", "failed": "failed"}
MIN_TRAIN_TASKS = 2  # the run's dev split takes one; at least one is left to train on


class JobError(Exception):
    """A job that cannot go on; the message becomes status.json's `message`."""


# -- status.json --------------------------------------------------------------------------------
def read_status(job_dir: Path) -> dict:
    try:
        return json.loads((Path(job_dir) / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"job": Path(job_dir).name, "state": "queued"}


def write_status(job_dir: Path, **fields) -> dict:
    """Merge `fields` into status.json (atomically); returns the new status."""
    status = {**read_status(job_dir), **fields, "updated": now_iso()}
    with atomic_file(Path(job_dir) / "status.json") as staging:
        write_json(staging, status)
    return status


# -- the job process -----------------------------------------------------------------------------
def _progress_callback(job_dir: Path):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Epochs into status.json (the Trainer of this process gets it: see run_job)."""

        def on_train_begin(self, args, state, control, **kwargs):
            epochs = getattr(state, "num_train_epochs", None) or args.num_train_epochs
            write_status(job_dir, state="training", epoch=0, epochs=epochs)

        def on_epoch_end(self, args, state, control, **kwargs):
            write_status(job_dir, epoch=round(float(state.epoch or 0), 2))

    return Progress()


def _pull(job: dict, job_dir: Path, schema):
    """The project's annotated tasks (a validated Label Studio JSON export) -> (tasks, documents)."""
    from ..data.readers import AnnotationError, read_corpus
    from .client import Studio

    studio = Studio(os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY"))
    try:
        project = studio._call(f"reading project {job['project_id']}", studio.client.projects.get, job["project_id"])
        studio.project_schema(project, schema.labels, "the backend's run config")
        tasks = studio.export_json(project.id)
    except StudioError as exc:
        raise JobError(str(exc)) from None
    if not isinstance(tasks, list):
        raise JobError(f"the export of project {job['project_id']} is not a list of tasks")
    export = job_dir / "export.json"
    write_json(export, tasks)
    try:
        corpus = read_corpus(export, fmt="labelstudio", schema=schema)
    except AnnotationError as exc:
        raise JobError(f"the annotations of project {project.title!r} (id {project.id}) do not validate against the "
                       f"run config's labeling config ({len(exc.problems)} problem(s); first: {exc.problems[0]})") \
            from None
    return project, tasks, corpus


def run_job(job_dir: str | Path) -> int:
    """The job process: pull, train, evaluate, publish, gate (see the module docstring)."""
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    write_status(job_dir, state="pulling", pid=os.getpid(), started=now_iso(), started_at=time.time(),
                 message=f"exporting project {job['project_id']} from Label Studio")
    try:
        outcome = _run(job, job_dir)
    except JobError as exc:
        log.error("job %s failed: %s", job_dir.name, exc)
        write_status(job_dir, state="failed", message=str(exc), finished=now_iso(), finished_at=time.time())
        return 1
    except Exception as exc:  # noqa: BLE001 - recorded, then the process exits non-zero
        traceback.print_exc()
        write_status(job_dir, state="failed", message=f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                     finished=now_iso(), finished_at=time.time())
        return 1
    finally:
        shutil.rmtree(job_dir / "ckpt", ignore_errors=True)
        shutil.rmtree(job_dir / "out", ignore_errors=True)
    write_status(job_dir, **outcome, finished=now_iso(), finished_at=time.time())
    log.info("job %s: %s", job_dir.name, outcome["message"])
    return 0


def _run(job: dict, job_dir: Path) -> dict:
    import torch
    import transformers.trainer as hf_trainer

    from ..data.readers import read_corpus
    from ..inference import load_model
    from ..text.schema import read_labeling_config
    from ..train.config import load_config
    from ..train.evaluate import evaluate_documents
    from ..train.pipeline import run_once

    store = VersionStore(job["store"])
    base = load_config(job["config"], job["overrides"])
    if not base.data.labeling_config:
        raise JobError("the run config has no data.labeling_config: Label Studio exports need one")
    schema = read_labeling_config(base.data.labeling_config)
    project, tasks, corpus = _pull(job, job_dir, schema)
    annotated = sorted(int(doc.id) for doc in corpus.documents)
    held_out, chosen_now = store.holdout(project.id, annotated, base.seed)
    present = [task_id for task_id in held_out if task_id in set(annotated)]
    if not present:
        raise JobError(f"none of project {project.id}'s held-out tasks {held_out} has a usable annotation now: "
                       "the gate cannot compare versions")
    train_ids = [task_id for task_id in annotated if task_id not in set(held_out)]
    if len(train_ids) < MIN_TRAIN_TASKS:
        raise JobError(f"project {project.id} has {len(annotated)} annotated task(s), {len(held_out)} of them held "
                       f"out ({held_out}): at least {MIN_TRAIN_TASKS} more are needed to train (one for the dev split)")
    by_id = {task.get("id"): task for task in tasks if isinstance(task, dict)}
    write_json(job_dir / "train.json", [by_id[i] for i in train_ids])
    write_json(job_dir / "heldout.json", [by_id[i] for i in present])
    write_status(job_dir, state="training", project_title=project.title, tasks=len(annotated),
                 held_out=present, held_out_chosen_now=chosen_now,
                 message=f"training on {len(train_ids)} task(s), {len(present)} held out")

    config = load_config(job["config"], [*job["overrides"], f"data.train={job_dir / 'train.json'}",
                                         f"data.test={job_dir / 'heldout.json'}", "data.format=labelstudio",
                                         f"output.dir={job_dir / 'out'}", f"output.checkpoints={job_dir / 'ckpt'}"])
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    # this process exists for this one run: every Trainer it builds reports its epochs
    hf_trainer.DEFAULT_CALLBACKS.append(_progress_callback(job_dir))
    exported = run_once(config)

    write_status(job_dir, state="evaluating", message=f"scoring the new model and the current one on the "
                                                      f"held-out task(s) {present}")
    documents = read_corpus(job_dir / "heldout.json", fmt="labelstudio", schema=schema).documents
    candidate_f1 = evaluate_documents(load_model(exported, precision="fp32"), documents)[0]["f1"]
    run_metrics = json.loads((exported / "metrics.json").read_text(encoding="utf-8"))
    with store.lock():  # nothing moves `current` between reading it and deciding
        current = store.current()
        current_f1 = None
        if current is not None:
            current_f1 = evaluate_documents(load_model(store.path(current), precision="fp32"), documents)[0]["f1"]
        decision = gate(candidate_f1, current, current_f1, present)
        record = {"created": now_iso(), "job": job_dir.name, "reason": job.get("reason"),
                  "project": {"id": project.id, "title": project.title},
                  "source": f"Label Studio project {project.title!r} (id {project.id}): {len(train_ids)} task(s) "
                            f"trained on, {len(present)} held out",
                  "config": job["config"], "overrides": job["overrides"],
                  "metrics": {**summary_metrics(run_metrics), "held_out_f1": candidate_f1},
                  "gate": decision.to_dict()}
        name = store.publish(exported, record)
        if decision.accepted:
            store.set_current(name)
    state = "done" if decision.accepted else "refused"
    message = f"{name}: {decision.reason}" if decision.accepted else f"{name} not served: {decision.reason}"
    return {"state": state, "version": name, "gate": decision.to_dict(), "message": message}


# -- the backend's side -------------------------------------------------------------------------
class Retrainer:
    """Starts and watches jobs for one backend: at most one runs; START_TRAINING while one
    runs answers with the running job. `on_finish` runs (in a watcher thread) when a job's
    process exits, so the backend can pick up a new `current`."""

    def __init__(self, store: VersionStore, config: str | Path, overrides: list[str], url: str, token: str,
                 retrain_every: int | None = None, on_finish: Callable[[dict], None] | None = None,
                 python: str = sys.executable):
        self.store = store
        self.config = str(Path(config).resolve())
        self.overrides = list(overrides)
        self.url = url
        self._token = token  # handed to the job through its environment only
        self.retrain_every = retrain_every
        self.on_finish = on_finish
        self.python = python
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.job_dir: Path | None = None
        self.pending: dict[int, int] = {}  # project id -> annotation events since its last job
        self.projects: dict[int, dict] = {}

    # starting ------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _new_job_dir(self) -> Path:
        jobs = self.store.jobs_dir()
        jobs.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[4:]) for p in jobs.glob("job-*") if p.name[4:].isdigit()]
        number = max(numbers, default=0) + 1
        while True:
            try:
                path = jobs / f"job-{number:04d}"
                path.mkdir()
                return path
            except FileExistsError:
                number += 1

    def start(self, project: dict, reason: str) -> tuple[dict, bool]:
        """Start a job on `project` (Label Studio's project object: `id`, `title`, ...) unless one
        runs; returns (its status, started)."""
        project_id = project.get("id") if isinstance(project, dict) else None
        if not isinstance(project_id, int) or isinstance(project_id, bool):
            raise TypeError('the request has no "project": {"id": <int>, ...}')
        with self.lock:
            if self.running():
                return self.status() or {}, False
            latest = self.status()  # a job a previous backend started may still run
            if latest and latest.get("state") not in TERMINAL and _alive(latest.get("pid")):
                return latest, False
            job_dir = self._new_job_dir()
            job = {"job": job_dir.name, "project_id": project_id, "project_title": project.get("title"),
                   "reason": reason, "config": self.config, "overrides": self.overrides,
                   "store": str(self.store.root.resolve()), "url": self.url, "created": now_iso()}
            write_json(job_dir / "job.json", job)
            write_status(job_dir, job=job_dir.name, project=project_id, reason=reason, state="queued",
                         created=now_iso(), created_at=time.time(), message="starting the training process")
            env = dict(os.environ, LABEL_STUDIO_URL=self.url, LABEL_STUDIO_API_KEY=self._token)
            with open(job_dir / "train.log", "ab") as output:
                process = subprocess.Popen([self.python, "-m", "training.studio.retrain", str(job_dir)],
                                           stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                           env=env, start_new_session=True)
            self.process, self.job_dir = process, job_dir
            self.pending[project_id] = 0
            status = write_status(job_dir, pid=process.pid)
            log.info("job %s started (pid %d) for project %d: %s", job_dir.name, process.pid, project_id, reason)
            threading.Thread(target=self._watch, args=(process, job_dir), name=f"watch-{job_dir.name}",
                             daemon=True).start()
            return self._with_elapsed(status), True

    def annotation_event(self, project: dict, count: int = 1) -> dict:
        """Count annotation events; start a job when a project reaches `retrain_every`."""
        project_id = project.get("id") if isinstance(project, dict) else None
        if not self.retrain_every or not isinstance(project_id, int):
            return {"status": "ignored", "reason": "retraining on annotation events is off (--retrain-every)"}
        with self.lock:
            self.pending[project_id] = self.pending.get(project_id, 0) + count
            self.projects[project_id] = project
            seen = self.pending[project_id]
        if seen < self.retrain_every:
            return {"status": "counted", "annotations_since_last_job": seen, "retrain_every": self.retrain_every}
        status, started = self.start(project, f"{seen} annotation event(s) (--retrain-every {self.retrain_every})")
        return {"status": "started" if started else "waiting", "job": status.get("job"),
                "annotations_since_last_job": 0 if started else seen, "retrain_every": self.retrain_every}

    # watching ------------------------------------------------------------------------------
    def _watch(self, process: subprocess.Popen, job_dir: Path) -> None:
        code = process.wait()
        status = read_status(job_dir)
        if status.get("state") not in TERMINAL:
            for leftover in ("ckpt", "out"):  # what the job would have removed itself
                shutil.rmtree(job_dir / leftover, ignore_errors=True)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            status = write_status(job_dir, state="failed", finished=now_iso(), finished_at=time.time(),
                                  message=f"the training process {how} while {status.get('state')}; "
                                          "the served version is unchanged")
        level = logging.INFO if status["state"] == "done" else logging.WARNING
        log.log(level, "job %s %s: %s", job_dir.name, status["state"], status.get("message"))
        if self.on_finish:
            try:
                self.on_finish(status)
            except Exception:  # a watcher thread must not die silently
                log.exception("after job %s", job_dir.name)
        with self.lock:
            if self.process is process:
                self.process = None
            again = [(pid, n) for pid, n in self.pending.items()
                     if self.retrain_every and n >= self.retrain_every and pid in self.projects]
        for project_id, seen in again[:1]:  # events that arrived while it trained
            self.start(self.projects[project_id], f"{seen} annotation event(s) during the previous job")

    def latest_job_dir(self) -> Path | None:
        if self.job_dir is not None:
            return self.job_dir
        jobs = sorted(self.store.jobs_dir().glob("job-*")) if self.store.jobs_dir().is_dir() else []
        return jobs[-1] if jobs else None

    def _with_elapsed(self, status: dict) -> dict:
        begun = status.get("started_at") or status.get("created_at")
        end = status.get("finished_at") or time.time()
        if begun:
            status["elapsed_s"] = round(end - begun, 1)
        status["label_studio_status"] = LABEL_STUDIO_JOB_STATUS.get(status.get("state"), "failed")
        return status

    def status(self, job: str | None = None) -> dict | None:
        """A job's status (the latest when `job` is None), with elapsed seconds. A job left
        unfinished by an earlier backend whose process is gone reads as failed."""
        job_dir = self.store.jobs_dir() / job if job else self.latest_job_dir()
        if job_dir is None or not (job_dir / "job.json").is_file():
            return None
        status = read_status(job_dir)
        # a previous backend's job whose process is gone (ours is settled by _watch)
        if status.get("state") not in TERMINAL and self.job_dir != job_dir and not _alive(status.get("pid")):
            status = write_status(job_dir, state="failed", message="the training process is gone (the backend "
                                                                    "that started it stopped)")
        return self._with_elapsed(status)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a running job (its whole process group), e.g. when the backend stops."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def describe(self) -> dict:
        return {"config": self.config, "overrides": self.overrides, "retrain_every": self.retrain_every,
                "annotations_since_last_job": dict(self.pending), "gate_rule": GATE_RULE}


def _alive(pid) -> bool:
    return isinstance(pid, int) and pid > 0 and pid_alive(pid)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m training.studio.retrain JOB_DIR (started by the ML backend)", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_job(sys.argv[1]))
