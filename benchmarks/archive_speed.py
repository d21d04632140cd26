"""Archive tagging speed: documents/s of one process, N local worker processes and Ray.

The five bundled articles repeated `--copies` times, as a JSON-lines file, tagged with
the library behind `python -m training.predict -o OUT` (planning, reading, predict(),
resumable writing): (a) one process with torch's default threads (all cores), (a1) one
process with one torch thread, the unit the others multiply, (b) N spawned worker
processes of cores / N threads (`--workers N`), (c) Ray Data on a local cluster with N
one-thread actors (`--engine ray`; skipped without Ray). Wall-clock time includes the
start-up (model loading, spawning workers, starting Ray); "after start-up" counts from
the moment the first chunk was written. The outputs must be identical bytes.

    python -m benchmarks.archive_speed [--model DIR] [--copies 60] [--workers N]

Without --model it trains (once, cached in build/bench) a PhoBERT-base-geometry model.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, base_sized_model, machine
from training.common.tables import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="exported model dir (default: the base-geometry benchmark model)")
    parser.add_argument("--copies", type=int, default=60, help="copies of the five articles to tag")
    parser.add_argument("--workers", type=int, default=None, help="processes / Ray actors (default: the cores)")
    parser.add_argument("--chunk-size", type=int, default=16, help="records per chunk")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()

    import torch

    from training.inference import load_model
    from training.inference.archive import (
        ResumableOutput,
        Settings,
        available_cores,
        job_description,
        plan_chunks,
        run_local,
        run_pool,
        tag_archive,
        threads_per_worker,
    )

    model_dir = str(args.model or base_sized_model())
    workers = args.workers or available_cores()
    tasks = json.loads((ROOT / "annotations" / "tasks.json").read_text(encoding="utf-8"))
    texts = [task["data"]["text"] for task in tasks] * args.copies
    settings = Settings(chunk_size=args.chunk_size)

    with tempfile.TemporaryDirectory(prefix="archive-speed-") as tmp:
        source = Path(tmp) / "archive.jsonl"
        source.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                                  for i, t in enumerate(texts)), encoding="utf-8")
        chunks = plan_chunks([str(source)], settings)
        job = job_description([str(source)], settings, "auto", False, model_dir, args.precision)

        def local(todo, threads=None):
            model = load_model(model_dir, precision=args.precision, num_threads=threads)
            return run_local(todo, model, settings)

        def local_one_thread(todo):
            return local(todo, threads=1)

        def pool(todo):
            return run_pool(todo, model_dir, settings, workers, args.precision)

        def on_ray(todo):
            from training.inference.ray_engine import run_ray

            return run_ray(todo, model_dir, settings, workers, args.precision, threads=1, address="local")

        engines = [(f"(a) 1 process, torch's default ({torch.get_num_threads()} threads)", local),
                   ("(a1) 1 process x 1 thread", local_one_thread),
                   (f"(b) {workers} processes x {threads_per_worker(workers)} threads", pool)]
        try:
            import ray.data  # noqa: F401

            engines.append((f"(c) Ray Data, local, {workers} actors x 1 thread", on_ray))
        except ImportError as exc:
            print(f"(c) skipped: Ray Data cannot be imported ({exc})")

        rows, outputs = [], {}
        default_threads = torch.get_num_threads()
        for name, engine in engines:
            print(f"{name}: {len(texts)} documents", flush=True)
            out = Path(tmp) / f"out-{len(outputs)}.jsonl"
            writer = ResumableOutput(out, job)
            first: list[float] = []
            write = writer.write

            def timed_write(block, write=write, first=first):
                write(block)
                if not first:
                    first.append(time.perf_counter())
            writer.write = timed_write
            started = time.perf_counter()
            tag_archive(chunks, engine, writer, progress=True)
            seconds = time.perf_counter() - started
            steady = (len(texts) - chunks[0].count) / max(seconds - (first[0] - started), 1e-9)
            outputs[name] = out.read_bytes()
            torch.set_num_threads(default_threads)  # (a1) changed it for this process
            rows.append([name, seconds, len(texts) / seconds, first[0] - started, steady,
                         f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"])
        reference = next(iter(outputs.values()))
        same = all(output == reference for output in outputs.values())

    print()
    print(machine())
    print(f"model: {model_dir}; {len(texts)} documents ({sum(map(len, texts))} characters), chunks of "
          f"{args.chunk_size}, precision {args.precision}\n")
    base = rows[0][2]
    print(Table(["engine", "seconds", "docs/s", "first chunk s", "docs/s after start-up", "load avg", "x (a)"],
                [[*row, row[2] / base] for row in rows]))
    print("load avg: the machine's 1-minute load average when the engine finished (other work on the machine "
          "slows every row)")
    print(f"\noutputs byte-identical across engines: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
