"""`python -m training.predict --model DIR FILE...`: entities as JSON lines.

Each FILE is one text (`-` or no FILE: standard input); with `--lines` every line is a
text of its own. JSON lines (`.jsonl`, `.ndjson`: one object per line, the text under
`--text-key`, an optional id under `--id-key`) and Parquet (`.parquet`: a text column;
`pip install 'vi-news-ner[archive]'`) hold one record per line or row; `--format`
overrides the guess from the suffix. One JSON object per text or record, in input
order: {"source", "line" | "row"?, "id"?, "entities": [{text, label, start, end,
score}]}, offsets into the text exactly as read (UTF-8).

For archives: with `--output` (`-`: standard output), a killed run resumes where it stopped when rerun with
the same arguments (`--restart` starts over), and the output appears only when complete;
`--workers N` tags with N processes, `--engine ray` on a Ray cluster. The output is the
same bytes whichever way it was made (see training/inference/archive.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..model.artifact import ModelLoadError, check_model_dir
from .archive import (
    FORMATS,
    ArchiveError,
    ResumableOutput,
    Settings,
    job_description,
    plan_chunks,
    run_local,
    run_pool,
    tag_archive,
    threads_per_worker,
)
from .model import BATCH_SIZE, BATCH_TOKENS, load_model
from .precision import PRECISIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="text, JSON-lines or Parquet files; '-' or none reads standard input")
    parser.add_argument("--model", required=True, help="exported model directory (models/<run-name>)")
    parser.add_argument("--lines", action="store_true", help="treat every line of a text file as a separate text")
    parser.add_argument("--format", default="auto", choices=FORMATS,
                        help="input format (auto: .jsonl/.ndjson are JSON lines, .parquet/.pq Parquet, else text)")
    parser.add_argument("--text-key", default="text", help="JSON field / Parquet column holding the text")
    parser.add_argument("--id-key", default="id", help="JSON field / Parquet column copied to the output as 'id' "
                                                       "where present")
    parser.add_argument("--output", "-o", help="write JSON lines here (resumable) instead of standard output")
    parser.add_argument("--restart", action="store_true", help="discard the partial output of an earlier run")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 where the hardware runs it fast (AMX, AVX512-BF16, bf16 GPUs), "
                             "fp32 elsewhere; int8: the encoder's linear layers in dynamic int8 (CPU, opt-in; "
                             "faster on a CPU without hardware bf16, see docs/benchmarks.md)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="most sentences per forward pass")
    parser.add_argument("--batch-tokens", type=int, default=BATCH_TOKENS,
                        help="most padded tokens per forward pass (sentences are grouped by length)")
    parser.add_argument("--chunk-size", type=int, default=64,
                        help="records per predict() call, per write and per unit of work of a worker")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (per worker; default: torch's choice in one process, cores / N with "
                             "--workers N)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (local engine, default 1) or Ray actors (default: the cluster's "
                             "CPUs / threads)")
    parser.add_argument("--engine", default="local", choices=["local", "ray"],
                        help="local: this machine; ray: Ray Data (pip install 'vi-news-ner[cluster]')")
    parser.add_argument("--address", default="local",
                        help="with --engine ray: 'local' starts Ray for this job; 'auto' or host:port joins a cluster")
    args = parser.parse_args(argv)
    if (args.workers is not None and args.workers < 1) or (args.threads is not None and args.threads < 1):
        parser.error("--workers and --threads must be at least 1")

    if args.output == "-":  # as for the inputs, `-` is the standard stream
        args.output = None

    settings = Settings(args.text_key, args.id_key, args.batch_size, args.batch_tokens, args.chunk_size)
    try:
        chunks = plan_chunks(args.files, settings, args.format, args.lines)
        check_model_dir(Path(args.model))  # here too for the workers: before a partial output is started
        output = None
        if args.output:  # checked before the model loads: a bad --output fails at once
            job = job_description(args.files, settings, args.format, args.lines, args.model, args.precision)
            # standard input cannot be read again the same way: such a job always starts over
            output = ResumableOutput(args.output, job, restart=args.restart or "-" in (args.files or ["-"]))
        if args.engine == "ray":
            # imported here only: it is the one path that needs Ray (the `cluster` extra)
            from .ray_engine import run_ray

            def engine(todo):
                return run_ray(todo, args.model, settings, args.workers, args.precision, args.threads, args.address)
            print(f"{args.model}: Ray at {args.address}", file=sys.stderr)
        elif (args.workers or 1) > 1:
            def engine(todo):
                return run_pool(todo, args.model, settings, args.workers, args.precision, args.threads)
            print(f"{args.model}: {args.workers} worker processes x "
                  f"{threads_per_worker(args.workers, args.threads)} torch threads", file=sys.stderr)
        else:
            model = load_model(args.model, precision=args.precision, num_threads=args.threads)
            print(f"{args.model}: {model.device.type}, {model.precision}", file=sys.stderr)

            def engine(todo):
                return run_local(todo, model, settings)
        total = sum(chunk.count for chunk in chunks)
        tag_archive(chunks, engine, output, stream=sys.stdout, progress=total > 1)
    except BrokenPipeError:
        # the reader stopped early (`| head`): quiet, as the Python docs recommend
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ModelLoadError, ArchiveError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
