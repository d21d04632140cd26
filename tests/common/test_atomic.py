"""Atomic writes under kill -9: the target is always the complete old or new version,
leftovers of killed writers are cleaned up, and what is published is readable by others."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training.common.atomic import atomic_directory, atomic_file, remove_leftovers

FILES = 40

WRITER = """
import sys, time
from pathlib import Path
from training.common.atomic import atomic_directory, atomic_file
target, kind = Path(sys.argv[1]), sys.argv[2]
version = int(sys.argv[3])
while True:
    version += 1
    if kind == "dir":
        with atomic_directory(target) as staging:
            for i in range({files}):
                (staging / f"part{{i}}").write_text(str(version) * 2000)
            (staging / "complete").write_text(str(version))
    else:
        with atomic_file(target) as staging:
            staging.write_text(f"{{version}}\\n" * 20000)
    print(version, flush=True)
""".format(files=FILES)


def complete_version(target: Path, kind: str) -> int:
    """The version the target holds, asserting it is whole."""
    if kind == "dir":
        version = (target / "complete").read_text()
        assert sorted(p.name for p in target.iterdir()) == sorted(["complete", *(f"part{i}" for i in range(FILES))])
        assert all((target / f"part{i}").read_text() == version * 2000 for i in range(FILES))
        return int(version)
    lines = target.read_text().splitlines()
    assert len(lines) == 20000 and len(set(lines)) == 1
    return int(lines[0])


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_kill_at_random_moments_leaves_old_or_new_never_neither(tmp_path, kind):
    target = tmp_path / ("model" if kind == "dir" else "out.jsonl")
    rng = random.Random(0)
    # a first complete version, written by the same code
    subprocess.run([sys.executable, "-c", WRITER.replace("while True", "for _ in [0]"), str(target), kind, "0"],
                   check=True, capture_output=True)
    for _ in range(25):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind, "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        writer.stdout.readline()  # it has imported and published once: kill it while it works
        time.sleep(rng.uniform(0, 0.05))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        complete_version(target, kind)
    remove_leftovers(target)  # each writer also cleared what the one killed before it left
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failed_write_leaves_the_old_version_and_no_temporary(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as staging:
            (staging / "a").write_text("new")
            raise RuntimeError("export failed")
    assert (target / "a").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_leftovers_of_live_writers_are_kept(tmp_path):
    target = tmp_path / "model"
    mine = tmp_path / f".model.tmp-{os.getpid()}-abc"
    mine.mkdir()
    dead = tmp_path / ".model.tmp-999999999-abc"
    dead.mkdir()
    assert remove_leftovers(target) == [dead]
    assert mine.exists()


def test_published_paths_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "model") as staging:
            (staging / "weights").write_text("x")
        with atomic_file(tmp_path / "out.json") as staging:
            staging.write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "model" / "weights").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644


def test_a_file_is_never_replaced_by_a_directory(tmp_path):
    data = tmp_path / "gold.json"
    data.write_text("[]", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not a directory"):
        with atomic_directory(data):
            pass
    assert data.read_text(encoding="utf-8") == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["gold.json"]


def test_json_written_is_strict_json(tmp_path):
    import json

    from training.common.atomic import write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"f1": float("nan"), "log": [{"grad_norm": float("inf")}, 1.5]})
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == {
        "f1": None, "log": [{"grad_norm": None}, 1.5]}
