"""Model versions for the ML backend: a store of trained models, the `current` pointer,
the held-out tasks and the gate that decides whether a new version is served.

A store is one directory (`--models DIR`):

    DIR/v0001/          an exported model directory (model.safetensors, metrics.json, ...) plus
    DIR/v0002/ ...      version.json: {version, created, source, metrics, gate}
    DIR/current         one line, the version served; replaced atomically (os.replace)
    DIR/holdout.json    per Label Studio project: the held-out task ids, chosen once
    DIR/jobs/job-0001/  a retraining job's files (status.json, train.log, the pulled export)
    DIR/.lock           flock(2)ed while a version is published or the pointer moves

Versions appear whole: a job trains under DIR/jobs/, then renames the finished directory
to DIR/vNNNN (one rename on one filesystem), so a job killed at any moment leaves either
no new version or a complete one, and `current` is always the old or the new name.
The backend stats `current` on each request (one `os.stat`) and loads the version it
names when it changes: a rollback (`python -m training.studio rollback`) needs no restart.

The gate (GATE_RULE): per project, HOLDOUT_SHARE of the annotated tasks (at least one) are
held out the first time a job trains on it: the tasks whose sha256("<seed>:<task id>") are
smallest, seed = the run config's seed. Their ids are stored in holdout.json and never
change; those tasks are never trained on (they are the training run's test split). After
training, the new model and the current one are both scored on exactly those tasks (as
Label Studio holds them now) with `evaluate_documents` (seqeval strict IOB2, micro F1), and
the backend switches iff new F1 >= current F1. A refused version is kept (for the record,
and for a manual rollback) but not served.

Standard library only (the models are copied, never loaded, here).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..common.atomic import atomic_directory, atomic_file, write_json
from .errors import StudioError

VERSION_RE = re.compile(r"^v(\d{4,})$")
POINTER = "current"
HOLDOUT = "holdout.json"
RECORD = "version.json"
JOBS = "jobs"
HOLDOUT_SHARE = 0.2
GATE_RULE = ("switch to the new version iff its micro F1 (seqeval strict IOB2) on the project's held-out tasks "
             "is >= the current version's micro F1 on the same tasks; the held-out tasks are chosen once per "
             f"project ({HOLDOUT_SHARE:.0%} of the annotated tasks, at least 1: the smallest "
             "sha256('<seed>:<task id>')) and never trained on")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def version_name(number: int) -> str:
    return f"v{number:04d}"


def version_number(name: str) -> int | None:
    match = VERSION_RE.match(name)
    return int(match.group(1)) if match else None


# -- held-out tasks ---------------------------------------------------------------------------
def task_hash(seed: int | str, task_id: int) -> str:
    return hashlib.sha256(f"{seed}:{task_id}".encode()).hexdigest()


def choose_holdout(task_ids: Iterable[int], seed: int | str, share: float = HOLDOUT_SHARE) -> list[int]:
    """`share` of the tasks (rounded up, at least one), those of smallest seeded hash: the
    choice of one task does not depend on which other tasks exist."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    count = max(1, math.ceil(share * len(ids) - 1e-9))
    return sorted(sorted(ids, key=lambda task_id: task_hash(seed, task_id))[:count])


# -- the gate -----------------------------------------------------------------------------------
@dataclass
class GateDecision:
    accepted: bool
    reason: str
    candidate_f1: float | None = None
    current: str | None = None  # the version compared against
    current_f1: float | None = None
    held_out: list[int] = field(default_factory=list)
    rule: str = GATE_RULE
    decision: str = ""  # "switched", "refused", "initial", "kept"

    def to_dict(self) -> dict:
        return asdict(self)


def gate(candidate_f1: float, current: str | None, current_f1: float | None, held_out: list[int]) -> GateDecision:
    """The documented rule: switch iff candidate F1 >= current F1 on the same held-out tasks."""
    tasks = f"{len(held_out)} held-out task(s) {held_out}"
    if current is None or current_f1 is None:
        return GateDecision(True, f"no version was served; micro F1 {candidate_f1:.4f} on {tasks}", candidate_f1,
                            current, current_f1, list(held_out), decision="switched")
    if candidate_f1 >= current_f1:
        return GateDecision(True, f"micro F1 on {tasks}: {candidate_f1:.4f} >= {current_f1:.4f} of {current}: "
                                  "switched", candidate_f1, current, current_f1, list(held_out), decision="switched")
    return GateDecision(False, f"micro F1 on {tasks}: {candidate_f1:.4f} < {current_f1:.4f} of {current}: "
                               f"kept {current}", candidate_f1, current, current_f1, list(held_out), decision="refused")


# -- the store ----------------------------------------------------------------------------------
class VersionStore:
    """One directory of versions (see the module docstring). Methods that change it take
    `lock()` themselves unless they say "under lock()"."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # reading -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The published versions, oldest first."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        found = [(version_number(p.name), p.name) for p in entries if p.is_dir()]
        return [name for number, name in sorted(item for item in found if item[0] is not None)]

    def path(self, name: str) -> Path:
        if version_number(name) is None:
            raise StudioError(f"{name!r} is not a version name (v0001, v0002, ...)")
        return self.root / name

    def exists(self, name: str) -> bool:
        return version_number(name) is not None and (self.root / name).is_dir()

    def record(self, name: str) -> dict:
        try:
            record = json.loads((self.path(name) / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        record.setdefault("version", name)
        return record

    def pointer_path(self) -> Path:
        return self.root / POINTER

    def current(self) -> str | None:
        """The version `current` names (None when there is no pointer yet)."""
        try:
            name = self.pointer_path().read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not self.exists(name):
            raise StudioError(f"{self.pointer_path()} names {name!r}, which is not a version in {self.root}")
        return name

    def stamp(self) -> tuple | None:
        """What changes whenever the pointer is replaced (one stat, for the per-request check)."""
        try:
            st = os.stat(self.pointer_path())
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def listing(self) -> list[dict]:
        """Every version: {version, created, metrics, gate, current}, oldest first."""
        try:
            current = self.current()
        except StudioError:
            current = None
        rows = []
        for name in self.names():
            record = self.record(name)
            rows.append({"version": name, "created": record.get("created"), "source": record.get("source"),
                         "job": record.get("job"), "metrics": record.get("metrics", {}),
                         "gate": record.get("gate"), "current": name == current})
        return rows

    def holdouts(self) -> dict:
        try:
            return json.loads((self.root / HOLDOUT).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StudioError(f"{self.root / HOLDOUT} is not valid JSON ({exc})") from None

    # writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive flock on DIR/.lock (between the backend, its jobs and the CLI)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def next_name(self) -> str:
        numbers = [version_number(name) for name in self.names()]
        return version_name(max(numbers, default=0) + 1)

    def set_current(self, name: str) -> None:
        """Point `current` at `name`, atomically. Under lock()."""
        if not self.exists(name):
            raise StudioError(f"no version {name!r} in {self.root} (versions: {', '.join(self.names()) or 'none'})")
        with atomic_file(self.pointer_path()) as staging:
            staging.write_text(name + "\n", encoding="utf-8")

    def publish(self, model_dir: Path, record: dict) -> str:
        """Move a finished model directory (on this filesystem, e.g. under DIR/jobs/) into the
        store as the next version, version.json written first. Under lock()."""
        name = self.next_name()
        record = {**record, "version": name}
        write_json(Path(model_dir) / RECORD, record)
        os.rename(model_dir, self.root / name)
        return name

    def import_model(self, model_dir: str | Path) -> str:
        """Seed an empty store with an exported model (hard links where the filesystem allows,
        copies otherwise) as the first version, and point `current` at it."""
        model_dir = Path(model_dir)
        with self.lock():
            if self.names():
                raise StudioError(f"{self.root} already holds versions; import only seeds an empty store")
            name = version_name(1)
            try:
                metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                metrics = {}
            record = {"version": name, "created": now_iso(), "source": str(model_dir.resolve()),
                      "metrics": summary_metrics(metrics),
                      "gate": GateDecision(True, f"the model the backend was started with ({model_dir})",
                                           decision="initial").to_dict()}
            with atomic_directory(self.root / name) as staging:
                _copy_tree(model_dir, staging)
                write_json(staging / RECORD, record)
            self.set_current(name)
        return name

    def rollback(self, to: str) -> str | None:
        """Serve `to` from now on; returns the version served before."""
        with self.lock():
            before = self.current()
            self.set_current(to)
        return before

    def holdout(self, project_id: int, task_ids: Iterable[int], seed: int | str) -> tuple[list[int], bool]:
        """The project's held-out task ids: stored ones, else chosen now from `task_ids` and
        stored. Returns (ids, chosen_now). Takes lock()."""
        with self.lock():
            stored = self.holdouts()
            entry = stored.get(str(project_id))
            if entry:
                return list(entry["task_ids"]), False
            ids = sorted(set(task_ids))
            chosen = choose_holdout(ids, seed)
            stored[str(project_id)] = {"task_ids": chosen, "seed": seed, "share": HOLDOUT_SHARE,
                                       "chosen_at": now_iso(), "from_tasks": len(ids), "rule": GATE_RULE}
            with atomic_file(self.root / HOLDOUT) as staging:
                write_json(staging, stored)
            return chosen, True

    def jobs_dir(self) -> Path:
        return self.root / JOBS


def summary_metrics(metrics: dict) -> dict:
    """The scores worth listing from a run's metrics.json."""
    keep = ("f1", "precision", "recall", "macro_f1", "split", "documents", "train_seconds")
    return {key: metrics[key] for key in keep if key in metrics}


def _copy_tree(source: Path, target: Path) -> None:
    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for entry in source.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, copy_function=link_or_copy)
        else:
            link_or_copy(entry, target / entry.name)


def format_listing(rows: list[dict]) -> list[str]:
    """Lines for `python -m training.studio versions`."""
    lines = [f"  {'version':<8} {'created':<25} {'F1':>7} {'held-out F1':>11}  gate"]
    for row in rows:
        gate_record = row.get("gate") or {}
        held = gate_record.get("candidate_f1")
        f1 = row.get("metrics", {}).get("f1")
        mark = "*" if row["current"] else " "
        lines.append(f"{mark} {row['version']:<8} {row.get('created') or '?':<25} "
                     f"{'' if f1 is None else f'{f1:.4f}':>7} {'' if held is None else f'{held:.4f}':>11}  "
                     f"{gate_record.get('decision', '?')}: {gate_record.get('reason', '')}")
    return lines
