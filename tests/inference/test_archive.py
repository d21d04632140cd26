"""Archive-scale tagging: JSON lines and Parquet in, resumable JSON lines out, and the
same bytes from one process, a killed and resumed run, two worker processes and a
local two-worker Ray cluster."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from training.inference.archive import ArchiveError, Settings, job_description, plan_chunks
from training.inference.command import main

pytestmark = pytest.mark.slow

CHUNK = 3  # small chunks: many writes, so a kill lands mid-job


@pytest.fixture(scope="module")
def archive(gold, tmp_path_factory):
    """~30 records cut from the gold articles, with ids and a blank line, as JSON lines."""
    folder = tmp_path_factory.mktemp("archive")
    records = []
    for doc in gold.documents:
        paragraphs = [p for p in doc.text.split("\n") if len(p) > 40]
        records += paragraphs[:6]
    path = folder / "archive.jsonl"
    lines = [json.dumps({"id": f"a{i}", "text": text}, ensure_ascii=False) for i, text in enumerate(records)]
    lines.insert(4, "")  # blank lines are skipped, and counted in the line numbers
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, records


def cli(tiny_model_dir, *args):
    return [sys.executable, "-m", "training.predict", "--model", str(tiny_model_dir), "--chunk-size", str(CHUNK), *args]


@pytest.fixture(scope="module")
def reference(tiny_model_dir, archive, tmp_path_factory):
    """The uninterrupted single-process run: the bytes every other run must produce."""
    out = tmp_path_factory.mktemp("reference") / "entities.jsonl"
    done = subprocess.run(cli(tiny_model_dir, str(archive[0]), "-o", str(out)), cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_bytes()


def test_jsonl_records_keep_ids_line_numbers_and_exact_offsets(reference, archive):
    path, texts = archive
    rows = [json.loads(line) for line in reference.decode("utf-8").splitlines()]
    assert [row["id"] for row in rows] == [f"a{i}" for i in range(len(texts))]
    assert [row["line"] for row in rows] == [i + 1 if i < 4 else i + 2 for i in range(len(texts))]
    assert {row["source"] for row in rows} == {str(path)}
    assert sum(len(row["entities"]) for row in rows) > 0
    for row, text in zip(rows, texts):
        for entity in row["entities"]:
            assert text[entity["start"]:entity["end"]] == entity["text"]


def test_parquet_rows_get_the_same_entities(tiny_model_dir, reference, archive, tmp_path, capsys):
    pa = pytest.importorskip("pyarrow", reason="Parquet input needs pyarrow (the `archive` extra)")
    import pyarrow.parquet as pq

    texts = archive[1]
    path = tmp_path / "archive.parquet"
    table = pa.table({"doc": list(range(100, 100 + len(texts))), "body": texts})
    pq.write_table(table, path, row_group_size=7)  # chunks of 3 rows straddle the row groups
    assert main(["--model", str(tiny_model_dir), "--chunk-size", str(CHUNK), "--text-key", "body",
                 "--id-key", "doc", str(path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["row"], row["id"]) for row in rows] == [(i, 100 + i) for i in range(len(texts))]
    expected = [json.loads(line)["entities"] for line in reference.decode("utf-8").splitlines()]
    assert [row["entities"] for row in rows] == expected


def test_a_record_without_text_is_an_error_naming_its_line(tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "Hà Nội"}\n\n{"body": "Huế", "id": 3}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["--model", str(tiny_model_dir), str(path), "-o", str(out)]) == 1
    assert f"{path}:3: no 'text' field (keys: 'body', 'id')" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [path]  # refused before anything was started
    path.write_text('{"text": 7}\n', encoding="utf-8")
    with pytest.raises(ArchiveError, match=r"bad.jsonl:1: 'text' is int, not a string"):
        plan_chunks([str(path)], Settings())


def test_killed_run_resumes_to_the_same_bytes(tiny_model_dir, reference, archive, tmp_path):
    out = tmp_path / "entities.jsonl"
    partial = tmp_path / "entities.jsonl.partial" / "lines.jsonl"
    job = subprocess.Popen(cli(tiny_model_dir, str(archive[0]), "-o", str(out)), cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (partial.is_file() and partial.stat().st_size) and job.poll() is None:
            assert time.monotonic() < deadline, "no output line within 240 s"
            time.sleep(0.02)
        assert job.poll() is None, "the run finished before it could be killed"
        os.killpg(job.pid, signal.SIGKILL)
    finally:
        job.wait()
    written = partial.read_bytes()
    assert not out.exists() and 0 < written.count(b"\n") < reference.count(b"\n")
    assert reference.startswith(written)
    resumed = subprocess.run(cli(tiny_model_dir, str(archive[0]), "-o", str(out)), cwd=ROOT, capture_output=True,
                             text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entities.jsonl"]


def partial_output(tmp_path, tiny_model_dir, archive, content: bytes, **job_changes) -> Path:
    """A partial output as a killed run leaves it, with `content` as its lines."""
    out = tmp_path / "entities.jsonl"
    work = tmp_path / "entities.jsonl.partial"
    work.mkdir()
    settings = Settings(chunk_size=CHUNK)
    job = {**job_description([str(archive[0])], settings, "auto", False, str(tiny_model_dir), "auto"), **job_changes}
    (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (work / "lines.jsonl").write_bytes(content)
    return out


def test_torn_last_line_and_a_garbage_chunk_are_dropped(tiny_model_dir, reference, archive, tmp_path):
    lines = reference.splitlines(keepends=True)
    # two whole chunks, one line of the third, half a line: the first two chunks stay
    torn = b"".join(lines[:2 * CHUNK + 1]) + lines[2 * CHUNK + 1][:25]
    out = partial_output(tmp_path, tiny_model_dir, archive, torn)
    args = ["--model", str(tiny_model_dir), "--chunk-size", str(CHUNK), str(archive[0]), "-o", str(out)]
    assert main(args) == 0
    assert out.read_bytes() == reference
    # what a power cut can leave: the chunk being written counted out in lines but zeroed
    out.unlink()
    garbage = b"".join(lines[:CHUNK]) + b"\0" * 40 + b"\n" + b"{}\n" * (CHUNK - 1)
    out = partial_output(tmp_path, tiny_model_dir, archive, garbage)
    assert main(args) == 0
    assert out.read_bytes() == reference


def test_a_partial_output_of_another_job_is_refused(tiny_model_dir, reference, archive, tmp_path, capsys):
    out = partial_output(tmp_path, tiny_model_dir, archive, reference[:reference.index(b"\n") + 1], batch_size=8)
    args = ["--model", str(tiny_model_dir), "--chunk-size", str(CHUNK), str(archive[0]), "-o", str(out)]
    assert main(args) == 1
    assert "partial output of another job (it differs in: batch_size)" in capsys.readouterr().err
    assert main([*args, "--restart"]) == 0
    assert out.read_bytes() == reference


def test_an_input_changed_since_the_killed_run_is_not_resumed(tiny_model_dir, reference, archive, tmp_path, capsys):
    copy = tmp_path / "archive.jsonl"
    copy.write_bytes(archive[0].read_bytes())
    out = tmp_path / "entities.jsonl"
    work = tmp_path / "entities.jsonl.partial"
    work.mkdir()
    job = job_description([str(copy)], Settings(chunk_size=CHUNK), "auto", False, str(tiny_model_dir), "auto")
    (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
    (work / "lines.jsonl").write_bytes(b"".join(reference.splitlines(keepends=True)[:CHUNK]))
    # same number of records, other texts: the old lines must not be kept
    copy.write_text(archive[0].read_text(encoding="utf-8").replace('"a', '"b'), encoding="utf-8")
    args = ["--model", str(tiny_model_dir), "--chunk-size", str(CHUNK), str(copy), "-o", str(out)]
    assert main(args) == 1
    assert "partial output of another job (it differs in: inputs)" in capsys.readouterr().err


def test_outputs_that_would_destroy_something_are_refused_before_any_work(tiny_model_dir, archive, tmp_path, capsys):
    copy = tmp_path / "in.jsonl"
    copy.write_bytes(archive[0].read_bytes())
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, reason in ((copy, "is one of the inputs"), (folder, "is a directory"),
                           (tiny_model_dir / "out.jsonl", "is inside the model directory")):
        assert main(["--model", str(tiny_model_dir), str(copy), "-o", str(target)]) == 1
        assert reason in capsys.readouterr().err
    assert copy.read_bytes() == archive[0].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "in.jsonl"]
    assert not (tiny_model_dir / "out.jsonl.partial").exists()


@pytest.mark.parametrize("line,reason", [
    ('{"id": NaN, "text": "Huế"}', "NaN is not a JSON value"),
    ('{"id": 1e400, "text": "Huế"}', "1e400 overflows a float"),
    ('{"text": "Huế", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"text": "Huế", "id": 1' + "0" * 5000 + "}", "not valid JSON"),
])
def test_json_that_python_accepts_but_json_does_not_is_an_error_naming_the_line(tiny_model_dir, tmp_path, line,
                                                                                 reason, capsys):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"text": "Hà Nội"}\n' + line + "\n", encoding="utf-8")
    assert main(["--model", str(tiny_model_dir), str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:2: ") and reason in err


def test_text_lines_are_numbered_as_editors_number_them(tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "pages.txt"
    path.write_bytes("Trang 1\fTrang 2\u2028x\r\nÔng Đỗ Hùng Việt\x85.\n".encode("utf-8"))
    assert main(["--model", str(tiny_model_dir), "--lines", str(path), "-o", "-"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["line"] for row in rows] == [1, 2]
    assert not (tmp_path / "-").exists() and not Path("-").exists()
    path.write_bytes(b"ok\nVi\xe1t\n")
    assert main(["--model", str(tiny_model_dir), "--lines", str(path)]) == 1
    assert f"error: {path}:2: not UTF-8" in capsys.readouterr().err


def test_two_worker_processes_write_the_same_bytes(tiny_model_dir, reference, archive, tmp_path):
    out = tmp_path / "entities.jsonl"
    done = subprocess.run(cli(tiny_model_dir, str(archive[0]), "-o", str(out), "--workers", "2"), cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 worker processes x 1 torch threads" in done.stderr or os.cpu_count() != 2
    assert out.read_bytes() == reference


def test_ray_on_a_local_two_worker_cluster_writes_the_same_bytes(tiny_model_dir, reference, archive, tmp_path):
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'vi-news-ner[cluster]')")
    # resumes a single-process partial output, too: the engine may change between runs
    lines = reference.splitlines(keepends=True)
    out = partial_output(tmp_path, tiny_model_dir, archive, b"".join(lines[:CHUNK]) + lines[CHUNK][:10])
    done = subprocess.run(cli(tiny_model_dir, str(archive[0]), "-o", str(out), "--engine", "ray", "--workers", "2",
                              "--address", "local"), cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_bytes() == reference
