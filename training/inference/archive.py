"""Tagging an archive: millions of records in, one JSON line of entities per record out,
resumable after a kill, on one process, N local processes or a Ray cluster, always
byte for byte the same output.

Inputs
    text files (one text per file, or one per line with `by_line`), JSON lines (one
    object per line; the text under `text_key`, an optional id under `id_key`; blank
    lines are skipped but counted), Parquet (a `text_key` column, an optional `id_key`
    column; needs pyarrow, the `archive` extra). A JSON record without the text, or
    whose text is not a string, and a Parquet row whose text is null, are errors that
    name the file and line (row): they are found while planning, before anything is
    tagged.

Output lines
    `{"source", "line" | "row", "id"?, "entities": [{text, label, start, end,
    score}]}`, in input order: `line` is the 1-based line of a JSON-lines record (or of
    a text with `by_line`), `row` the 0-based row of a Parquet record; `id` is present
    when the record has one. Offsets index the text as read.

Chunks: why every engine writes the same bytes
    The job is planned up front as a list of chunks of `chunk_size` consecutive records
    of one input (`plan_chunks`). A chunk of a JSON-lines file is a byte range and a
    line number, of a Parquet file a row range: small descriptors, so a worker (a local
    process or a Ray actor) reads its records itself, with the same parser everywhere,
    and nothing but descriptors and finished lines cross process boundaries. Text files
    and standard input are read by the planner, as before, and their chunks carry the
    texts. Each chunk is one `NerModel.predict()` call (`predict_chunk`), so the
    sentences are batched the same way whichever process tags the chunk, and the
    chunk's lines are written in chunk order. Results are therefore independent of the
    engine and of how many workers there are (this assumes torch's CPU kernels give the
    same numbers whatever the thread count, as they did in the tests and the benchmark;
    scores are rounded to 4 decimals anyway). Planning parses every JSON record once,
    in the planning process, so the last line of an archive can stop the job before the
    first is tagged. (Ray Data's own `read_json` /
    `read_parquet` were not used: they do not report a record's position in its file,
    which the output order and the resume check need, and pyarrow's JSON reader types
    the records its own way; the descriptors keep the reading distributed anyway.)

Resume: one append-only file, published at the end
    With an output path, lines go to `OUTPUT.partial/lines.jsonl`, a whole chunk per
    write, each write flushed and fsynced; `OUTPUT.partial/job.json` records the
    settings that shape the bytes (inputs and model files with their sizes and times,
    format, keys, precision, batch and chunk size), so an input rewritten since the
    killed run is not resumed. An output that is a directory, one of the inputs or inside
    the model directory is refused before anything runs. When every chunk is written the
    file is renamed onto OUTPUT (atomic, as before: OUTPUT is never half-written) and
    the partial directory removed. A rerun of the same job after a kill reads the
    partial file, drops a torn last line and any lines past the last whole chunk,
    re-reads the last whole chunk's lines as JSON and checks the last one names that
    chunk's last record (a crash can leave garbage only in the chunk that was being
    written; it is dropped too), truncates the file there and carries on with the next
    chunk. Because a chunk is always tagged whole, the result is the same bytes as an
    uninterrupted run. A rerun with different settings stops with an error naming them
    (`restart=True` / `--restart` discards the partial output); the engine, the number
    of workers and the threads may change between runs. An exclusive lock on the
    partial directory keeps two runs from writing one output. Chosen over shard files:
    one file, one fsync per chunk and no merge step, and the order is the file order.
    Without an output path the lines stream to standard output, chunk by chunk (no
    resume); a job reading standard input always starts over.

Engines
    `run_local` tags in this process; `run_pool` starts N spawned worker processes,
    each loading the model once with cores / N torch threads, keeps 2 N chunks in
    flight and yields results in chunk order; `ray_engine.run_ray` (imported only when
    asked for) does the same on a Ray cluster.

Importing this module loads what the inference layer loads, nothing more: pyarrow is
imported when a Parquet input is planned or read, Ray only by `ray_engine.run_ray`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..common.atomic import strict_json
from ..model.artifact import ModelLoadError, check_model_dir
from ..text.documents import split_lines
from .model import BATCH_SIZE, BATCH_TOKENS, NerModel, load_model

FORMATS = ("auto", "text", "jsonl", "parquet")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
LINES_FILE = "lines.jsonl"
JOB_FILE = "job.json"


class ArchiveError(RuntimeError):
    """Bad input, an output that cannot be resumed, a worker that failed: one message."""


@dataclass(frozen=True)
class Settings:
    """What shapes the output bytes, besides the records and the model."""
    text_key: str = "text"
    id_key: str = "id"
    batch_size: int = BATCH_SIZE
    batch_tokens: int = BATCH_TOKENS
    chunk_size: int = 64


@dataclass(frozen=True)
class Chunk:
    """`count` consecutive records of one input. kind: inline (texts carried along),
    jsonl (bytes [start, stop) of `path`, whose first byte begins line `line`) or
    parquet (rows [start, stop) of `path`). `last` is the output key of its last record."""
    index: int
    kind: str
    source: str
    count: int
    last: dict
    path: str = ""
    start: int = 0
    stop: int = 0
    line: int = 0
    records: tuple = field(default=())  # inline: ((meta, text), ...)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Chunk:
        raw = json.loads(data)
        raw["records"] = tuple((meta, text) for meta, text in raw["records"])
        return cls(**raw)


# ---------------------------------------------------------------------------------------
# reading


def input_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "text"


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} overflows a float")
    return value


def parse_jsonl_line(raw: bytes, source: str, line: int, settings: Settings) -> tuple[dict, str] | None:
    """(output key, text) of one JSON-lines record, or None for a blank line."""
    if not raw.strip():
        return None
    where = f"{source}:{line}"
    try:
        record = json.loads(raw.decode("utf-8").lstrip("\ufeff") if line == 1 else raw.decode("utf-8"),
                            parse_constant=_no_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{where}: not UTF-8 ({exc})") from None
    except RecursionError:
        raise ArchiveError(f"{where}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, an integer too long to convert
        raise ArchiveError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ArchiveError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if settings.text_key not in record:
        keys = ", ".join(map(repr, list(record)[:8])) or "none"
        raise ArchiveError(f"{where}: no {settings.text_key!r} field (keys: {keys}); choose the field with --text-key")
    text = record[settings.text_key]
    if not isinstance(text, str):
        raise ArchiveError(f"{where}: {settings.text_key!r} is {type(text).__name__}, not a string")
    meta = {"source": source, "line": line}
    if settings.id_key in record:
        meta["id"] = record[settings.id_key]
    return meta, text


def _read_text(path: str) -> str:
    if path == "-":  # bytes, decoded strictly: the text stream would turn bad bytes into surrogates
        return sys.stdin.buffer.read().decode("utf-8")
    with open(path, "rb") as handle:  # decoded whole, so that an error can name its line
        return handle.read().decode("utf-8")


def _inline_chunks(records: Iterable[tuple[dict, str]], source: str, chunk_size: int,
                   first_index: int) -> Iterator[Chunk]:
    batch: list[tuple[dict, str]] = []
    index = first_index
    for record in records:
        batch.append(record)
        if len(batch) == chunk_size:
            yield Chunk(index, "inline", source, len(batch), batch[-1][0], records=tuple(batch))
            index, batch = index + 1, []
    if batch:
        yield Chunk(index, "inline", source, len(batch), batch[-1][0], records=tuple(batch))


def _plan_jsonl(path: str, settings: Settings, first_index: int) -> Iterator[Chunk]:
    """Byte ranges of `chunk_size` records each; every record is parsed and checked here
    (errors before anything is tagged), but not kept."""
    source, index = path, first_index
    offset = line = count = begin = first_line = 0
    last: dict = {}
    with open(path, "rb") as handle:
        for raw in handle:
            line += 1
            parsed = parse_jsonl_line(raw, source, line, settings)
            if parsed is not None:
                if count == 0:
                    begin, first_line = offset, line
                count += 1
                last = {"source": source, "line": line}
                if count == settings.chunk_size:
                    yield Chunk(index, "jsonl", source, count, last, path, begin, offset + len(raw), first_line)
                    index, count = index + 1, 0
            offset += len(raw)
    if count:
        yield Chunk(index, "jsonl", source, count, last, path, begin, offset, first_line)


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ArchiveError("reading Parquet needs pyarrow: pip install 'vi-news-ner[archive]'") from None
    return pq


def _plan_parquet(path: str, settings: Settings, first_index: int) -> Iterator[Chunk]:
    pq = _pyarrow_parquet()
    import pyarrow as pa

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"{path}: cannot read as Parquet ({exc})") from None
    schema = parquet.schema_arrow
    if settings.text_key not in schema.names:
        raise ArchiveError(f"{path}: no {settings.text_key!r} column (columns: {', '.join(schema.names)}); "
                           f"choose it with --text-key")
    kind = schema.field(settings.text_key).type
    values = kind.value_type if pa.types.is_dictionary(kind) else kind  # pandas categoricals are dictionaries
    string_types = (pa.types.is_string, pa.types.is_large_string, getattr(pa.types, "is_string_view", None))
    if not any(test is not None and test(values) for test in string_types):
        raise ArchiveError(f"{path}: column {settings.text_key!r} is {kind}, not a string column")
    row = 0
    for group in range(parquet.num_row_groups):  # null texts: an error naming the row, before tagging
        meta = parquet.metadata.row_group(group)
        stats = next((meta.column(j).statistics for j in range(meta.num_columns)
                      if meta.column(j).path_in_schema == settings.text_key), None)
        if stats is None or not stats.has_null_count or stats.null_count:  # read only where the footer can't tell
            column = parquet.read_row_group(group, columns=[settings.text_key]).column(0)
            if column.null_count:
                first = next(i for i, null in enumerate(column.is_null().to_pylist()) if null)
                raise ArchiveError(f"{path}: row {row + first}: {settings.text_key!r} is null")
        row += meta.num_rows
    index = first_index
    for begin in range(0, parquet.metadata.num_rows, settings.chunk_size):
        stop = min(begin + settings.chunk_size, parquet.metadata.num_rows)
        yield Chunk(index, "parquet", path, stop - begin, {"source": path, "row": stop - 1}, path, begin, stop)
        index += 1


def plan_chunks(inputs: Sequence[str], settings: Settings, fmt: str = "auto", by_line: bool = False) -> list[Chunk]:
    """The whole job as chunks, in output order. `-` is standard input (text or jsonl)."""
    if fmt not in FORMATS:
        raise ArchiveError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if min(settings.chunk_size, settings.batch_size, settings.batch_tokens) < 1:
        raise ArchiveError("chunk size, batch size and batch tokens must be at least 1")
    chunks: list[Chunk] = []
    for path in inputs or ["-"]:
        kind = input_format(path, fmt)
        source = "<stdin>" if path == "-" else path
        try:
            if kind == "parquet":
                if path == "-":
                    raise ArchiveError("Parquet cannot be read from standard input: name the file")
                chunks += _plan_parquet(path, settings, len(chunks))
            elif kind == "jsonl" and path != "-":
                chunks += _plan_jsonl(path, settings, len(chunks))
            elif kind == "jsonl":
                data = sys.stdin.buffer.read()
                records = (parse_jsonl_line(raw, source, number, settings)
                           for number, raw in enumerate(data.split(b"\n"), start=1))
                chunks += _inline_chunks((r for r in records if r is not None), source, settings.chunk_size,
                                         len(chunks))
            else:
                text = _read_text(path)
                records = ([({"source": source, "line": n}, line) for n, line in enumerate(split_lines(text), 1)]
                           if by_line else [({"source": source}, text)])
                chunks += _inline_chunks(records, source, settings.chunk_size, len(chunks))
        except UnicodeDecodeError as exc:
            line = exc.object[:exc.start].count(b"\n") + 1
            raise ArchiveError(f"{source}:{line}: not UTF-8 ({exc})") from None
        except OSError as exc:
            raise ArchiveError(f"{source}: {exc.strerror or exc}") from None
    return chunks


def read_chunk(chunk: Chunk, settings: Settings) -> list[tuple[dict, str]]:
    """The chunk's (output key, text) records, read from its input."""
    if chunk.kind == "inline":
        return list(chunk.records)
    if chunk.kind == "jsonl":
        with open(chunk.path, "rb") as handle:
            handle.seek(chunk.start)
            data = handle.read(chunk.stop - chunk.start)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        records = [parse_jsonl_line(raw, chunk.source, chunk.line + i, settings) for i, raw in enumerate(lines)]
        records = [r for r in records if r is not None]
    elif chunk.kind == "parquet":
        records = _read_parquet_rows(chunk, settings)
    else:
        raise ArchiveError(f"unknown chunk kind {chunk.kind!r}")
    if len(records) != chunk.count or (records and {k: records[-1][0].get(k) for k in chunk.last} != chunk.last):
        raise ArchiveError(f"{chunk.source}: changed since the job was planned (chunk {chunk.index})")
    return records


def _read_parquet_rows(chunk: Chunk, settings: Settings) -> list[tuple[dict, str]]:
    pq = _pyarrow_parquet()
    parquet = pq.ParquetFile(chunk.path)
    columns = [settings.text_key] + ([settings.id_key] if settings.id_key in parquet.schema_arrow.names
                                     and settings.id_key != settings.text_key else [])
    texts: list = []
    ids: list = []
    first_row = 0
    for group in range(parquet.num_row_groups):  # read only the row groups that overlap the chunk
        rows = parquet.metadata.row_group(group).num_rows
        begin, end = max(chunk.start, first_row), min(chunk.stop, first_row + rows)
        if begin < end:
            table = parquet.read_row_group(group, columns=columns).slice(begin - first_row, end - begin)
            texts += table.column(settings.text_key).to_pylist()
            if len(columns) > 1:
                ids += table.column(settings.id_key).to_pylist()
        first_row += rows
        if first_row >= chunk.stop:
            break
    records = []
    for offset, text in enumerate(texts):
        row = chunk.start + offset
        if text is None:
            raise ArchiveError(f"{chunk.source}: row {row}: {settings.text_key!r} is null")
        meta = {"source": chunk.source, "row": row}
        if ids:
            meta["id"] = ids[offset]
        records.append((meta, text))
    return records


# ---------------------------------------------------------------------------------------
# tagging


def output_line(meta: dict, entities) -> str:
    """The one serialisation every engine uses."""
    # strict JSON: pandas writes a missing id as NaN, which JSON cannot hold
    record = strict_json({**meta, "entities": [entity.to_dict() for entity in entities]})
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800": escaped, so the file stays UTF-8
        line = json.dumps(record, ensure_ascii=True, default=str) + "\n"
    return line


def predict_chunk(model: NerModel, chunk: Chunk, settings: Settings) -> str:
    """The chunk's output lines, joined: one predict() call for the whole chunk."""
    records = read_chunk(chunk, settings)
    results = model.predict([text for _, text in records], batch_size=settings.batch_size,
                            batch_tokens=settings.batch_tokens)
    return "".join(output_line(meta, entities) for (meta, _), entities in zip(records, results))


def run_local(chunks: Iterable[Chunk], model: NerModel, settings: Settings) -> Iterator[str]:
    for chunk in chunks:
        yield predict_chunk(model, chunk, settings)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    return threads or max(1, available_cores() // max(1, workers))


_WORKER: dict = {}


def _init_worker(model_dir: str, precision: str, threads: int, device: str | None) -> None:
    try:
        _WORKER["model"] = load_model(model_dir, precision=precision, num_threads=threads, device=device)
    except Exception as exc:  # noqa: BLE001 - reported by the first chunk as itself, not as a broken pool
        _WORKER["error"] = exc


def _worker_chunk(chunk: Chunk, settings: Settings) -> str:
    if "error" in _WORKER:
        raise _WORKER["error"]
    return predict_chunk(_WORKER["model"], chunk, settings)


def run_pool(chunks: Iterable[Chunk], model_dir: str | os.PathLike, settings: Settings, workers: int,
             precision: str = "auto", threads: int | None = None, device: str | None = None) -> Iterator[str]:
    """Chunks tagged by `workers` spawned processes (each loads the model once, with
    `threads` torch threads, default cores / workers); results in chunk order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    check_model_dir(Path(model_dir))
    if isinstance(chunks, Sequence):
        workers = max(1, min(workers, len(chunks)))  # a process per chunk at most
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(str(model_dir), precision, threads_per_worker(workers, threads), device))
    pending: deque = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_worker_chunk, chunk, settings))
            if len(pending) >= 2 * workers:  # bounded: an archive never sits in memory
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise ArchiveError(f"a worker process died ({exc}); rerun to resume") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------
# writing


def model_fingerprint(model_dir: str | os.PathLike) -> dict:
    path = Path(model_dir).resolve()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []
    return {"path": str(path), "files": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}


def _input_fingerprint(path: str) -> list | str:
    """A path with its size and modification time: an input rewritten between a killed
    run and its rerun must not resume, or the old run's lines would be kept."""
    if path == "-":
        return path
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def job_description(inputs: Sequence[str], settings: Settings, fmt: str, by_line: bool,
                    model_dir: str | os.PathLike, precision: str) -> dict:
    return {"inputs": [_input_fingerprint(p) for p in inputs or ["-"]], "format": fmt,
            "lines": by_line, **asdict(settings), "model": model_fingerprint(model_dir), "precision": precision}


class ResumableOutput:
    """Chunks of lines appended to `TARGET.partial/lines.jsonl`, each write fsynced; the
    file replaces TARGET when `finish()` is called. See the module docstring."""

    def __init__(self, target: str | os.PathLike, job: dict, restart: bool = False):
        self.target = Path(target)
        if self.target.is_dir():
            raise ArchiveError(f"--output {target}: is a directory; name a file")
        resolved = self.target.resolve()
        inputs = [entry[0] for entry in job["inputs"] if isinstance(entry, list)]
        if str(resolved) in inputs:
            raise ArchiveError(f"--output {target}: is one of the inputs; it would be overwritten")
        model = Path(job["model"]["path"])
        if resolved == model or model in resolved.parents:
            raise ArchiveError(f"--output {target}: is inside the model directory {model}")
        self.work = self.target.with_name(self.target.name + ".partial")
        self.lines_path = self.work / LINES_FILE
        self.job = job
        self.restart = restart
        self._lock_fd: int | None = None
        self._handle = None

    def open(self, chunks: Sequence[Chunk]) -> int:
        """Lock, recover, and return how many leading chunks are already written."""
        self.work.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            return self._open(chunks)
        except BaseException:
            self.close()
            raise

    def _open(self, chunks: Sequence[Chunk]) -> int:
        from ..common.atomic import atomic_file, write_json

        job_path = self.work / JOB_FILE
        done = 0
        if not self.restart and job_path.is_file() and self.lines_path.is_file():
            try:
                previous = json.loads(job_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = None
            if previous is not None and previous != self.job:
                changed = sorted(k for k in set(previous) | set(self.job) if previous.get(k) != self.job.get(k))
                raise ArchiveError(f"{self.work} holds a partial output of another job (it differs in: "
                                   f"{', '.join(changed)}); rerun with the same settings to resume it, or pass "
                                   f"--restart to discard it")
            if previous is not None:
                done = self._recover(chunks)
        if done == 0:
            for path in (self.lines_path, job_path):
                path.unlink(missing_ok=True)
            with atomic_file(job_path) as staging:
                write_json(staging, self.job)
            _fsync_dir(self.work)
        self._handle = open(self.lines_path, "ab")  # noqa: SIM115 - open until finish() or close()
        self._handle.truncate(self._offset if done else 0)
        self._fsync()
        return done

    def _recover(self, chunks: Sequence[Chunk]) -> int:
        """How many whole chunks at the start of the partial file check out; sets `_offset`."""
        boundaries = [0]  # byte offset after each whole chunk
        lines_in_chunk = offset = 0
        with open(self.lines_path, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n") or len(boundaries) > len(chunks):
                    break  # a torn last line, or lines beyond the job
                offset += len(raw)
                lines_in_chunk += 1
                if lines_in_chunk == chunks[len(boundaries) - 1].count:
                    boundaries.append(offset)
                    lines_in_chunk = 0
        # Only the chunk being written when the run died can hold garbage (the earlier
        # ones were fsynced): if the last whole chunk does not check out, drop it; if the
        # one before does not either, the inputs changed under the partial output.
        for attempt in range(2):
            if len(boundaries) == 1 or self._chunk_ok(boundaries[-2], boundaries[-1], chunks[len(boundaries) - 2]):
                break
            if attempt == 1:
                raise ArchiveError(f"{self.lines_path}: its records do not match the inputs (were they changed?); "
                                   f"pass --restart to discard it")
            boundaries.pop()
        self._offset = boundaries[-1]
        return len(boundaries) - 1

    def _chunk_ok(self, begin: int, end: int, chunk: Chunk) -> bool:
        with open(self.lines_path, "rb") as handle:
            handle.seek(begin)
            data = handle.read(end - begin)
        try:
            rows = [json.loads(raw) for raw in data.split(b"\n")[:-1]]
        except ValueError:
            return False
        if len(rows) != chunk.count or not all(isinstance(r, dict) and isinstance(r.get("entities"), list)
                                               for r in rows):
            return False
        return {key: rows[-1].get(key) for key in chunk.last} == chunk.last

    def write(self, block: str) -> None:
        self._handle.write(block.encode("utf-8"))
        self._fsync()

    def finish(self) -> None:
        self._fsync()
        self._handle.close()
        self._handle = None
        os.replace(self.lines_path, self.target)
        _fsync_dir(self.target.parent)
        shutil.rmtree(self.work, ignore_errors=True)
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _fsync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _lock(self) -> None:
        self._lock_fd = os.open(self.work, os.O_RDONLY)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ArchiveError(f"{self.work}: another run is writing this output") from None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# the whole job


Engine = Callable[[Sequence[Chunk]], Iterator[str]]


def tag_archive(chunks: Sequence[Chunk], engine: Engine, output: ResumableOutput | None = None,
                stream=None, progress: bool = False) -> int:
    """Run `engine` over the chunks not yet in `output` (or all, to `stream`); returns
    the number of records written by this call."""
    from tqdm.auto import tqdm

    done = output.open(chunks) if output is not None else 0
    todo = chunks[done:]
    total = sum(chunk.count for chunk in chunks)
    bar = tqdm(total=total, initial=total - sum(c.count for c in todo), unit="doc", desc="tagging",
               disable=not progress, file=sys.stderr)
    written = 0
    results = engine(todo)
    try:
        for chunk, block in zip(todo, results):
            if output is not None:
                output.write(block)
            else:
                stream.write(block)
                stream.flush()
            written += chunk.count
            bar.update(chunk.count)
        if output is not None:
            output.finish()
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a pool or a cluster shuts down here, also after an error
        bar.close()
        if output is not None:
            output.close()
    return written


__all__ = ["ArchiveError", "Chunk", "ModelLoadError", "ResumableOutput", "Settings", "available_cores",
           "job_description", "output_line", "plan_chunks", "predict_chunk", "read_chunk", "run_local", "run_pool",
           "tag_archive", "threads_per_worker"]
