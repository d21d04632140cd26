"""Writes that either happen completely or not at all, even under `kill -9`.

Everything is written into a hidden temporary path beside the target, then swapped in:
a file with `os.replace`, a directory with one atomic exchange of the two names
(Linux `renameat2(RENAME_EXCHANGE)`), so at every moment the target is either the
complete old version or the complete new one, never missing. The temporary names
carry the writer's process id; leftovers of a killed writer are removed by the next
write to the same target. What is published gets ordinary permissions under the
user's umask (temporary files and directories start private).

Standard library only, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `target`, on failure it is removed."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target}: exists and is not a directory; it would be replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        if target.exists():
            _exchange(staging, target)  # staging now holds the old version, removed below
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` (os.replace),
    on any failure it is removed and `target` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.chmod(staging, 0o666 & ~_umask())
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def remove_leftovers(target: Path) -> list[Path]:
    """Remove temporary siblings of `target` left by writers that no longer run."""
    removed = []
    for path in _temporaries(target):
        pid = path.name[len(f".{target.name}.tmp-"):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _temporaries(target: Path) -> Iterable[Path]:
    try:
        return list(target.parent.glob(f".{glob_escape(target.name)}.tmp-*"))
    except OSError:
        return []


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it the only portable way, and put it back
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically. Where the kernel or filesystem cannot, fall back to two
    renames (a window in which `b` is missing; the old version then waits as a leftover)."""
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
    old = b.parent / f".{b.name}.tmp-{os.getpid()}-old"
    b.rename(old)
    a.rename(b)
    old.rename(a)


def strict_json(value):
    """`value` with NaN and infinities as null: JSON has no such numbers, and jq, Node and
    browsers refuse the `NaN` Python writes (a training log's grad norm can be one)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(strict_json(data), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")


def write_jsonl(path: Path, records) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
