"""The archive job on a Ray cluster (Ray Data), the `cluster` extra:

    pip install 'vi-news-ner[cluster]'
    python -m training.predict --model DIR archive.jsonl -o out.jsonl --engine ray --address auto

`run_ray` turns the planned chunks (see `archive`) into a Ray Dataset of small
descriptors, one per block, and `map_batches` them through `ChunkPredictor`, a callable
class, on a pool of `workers` actors (`ActorPoolStrategy`): each actor loads the model
once (with `threads` torch threads and as many Ray CPUs reserved) and tags one chunk per
call with `archive.predict_chunk`, reading the chunk's records itself. The driver puts
the results back in chunk order (Ray Data runs with `preserve_order`, and a reorder
buffer makes sure) and hands them to the same resumable writer as the local engines, so
the output is byte for byte that of one process. On a real cluster the model directory,
the inputs and this package must be at the same paths on every node (a shared file
system), as for any Ray job that reads local paths.

`address`: "local" starts a private single-machine Ray instance for the job and stops
it afterwards; anything else ("auto", "ray://head:10001", "10.0.0.5:6379") connects to
a running cluster.

Importing this module does not import Ray (the inference layer's modules are all
imported by the layering test, and `pip install .` has no Ray): `run_ray` does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

from .archive import ArchiveError, Chunk, Settings, available_cores, predict_chunk
from .model import load_model


class ChunkPredictor:
    """One per Ray actor: the model, loaded once; tags a batch of chunk descriptors."""

    def __init__(self, model_dir: str, precision: str, threads: int, settings: dict, device: str | None = None):
        self.model = load_model(model_dir, precision=precision, num_threads=threads, device=device)
        self.settings = Settings(**settings)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        blocks = [predict_chunk(self.model, Chunk.from_json(str(data)), self.settings) for data in batch["chunk"]]
        return {"index": np.asarray(batch["index"]), "lines": np.asarray(blocks, dtype=object)}


def start(address: str = "local", num_cpus: int | None = None):
    """Connect to (or start) Ray; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    options = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == "local":
        ray.init(num_cpus=num_cpus or available_cores(), include_dashboard=False, **options)
    else:
        ray.init(address=address, **options)
    return True


def run_ray(chunks: Sequence[Chunk], model_dir: str | os.PathLike, settings: Settings, workers: int | None = None,
            precision: str = "auto", threads: int | None = None, address: str = "local",
            device: str | None = None) -> Iterator[str]:
    """Each chunk's output lines, in chunk order, tagged by `workers` Ray actors (default:
    the cluster's CPUs / `threads`) of `threads` torch threads each (default: 1, or
    the local cores / `workers`)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ArchiveError(f"--engine ray needs Ray Data: pip install 'vi-news-ner[cluster]' ({exc})") from None
    from dataclasses import asdict
    from pathlib import Path

    if not chunks:
        return
    if address == "local" and workers:
        threads = threads or max(1, available_cores() // workers)
    threads = threads or 1
    started = start(address, num_cpus=max(available_cores(), (workers or 1) * threads) if address == "local" else None)
    try:
        if not workers:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
        workers = min(workers, len(chunks))
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # the caller shows one bar, in documents
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        items = [{"index": chunk.index, "chunk": chunk.to_json()} for chunk in chunks]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ChunkPredictor, batch_size=1, batch_format="numpy", num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=workers),  # `concurrency=` before Ray 2.51
            fn_constructor_kwargs={"model_dir": str(Path(model_dir).resolve()), "precision": precision,
                                   "threads": threads, "settings": asdict(settings), "device": device})
        expected = [chunk.index for chunk in chunks]
        waiting: dict[int, str] = {}
        position = 0
        for row in dataset.iter_rows():
            waiting[int(row["index"])] = str(row["lines"])
            while position < len(expected) and expected[position] in waiting:
                yield waiting.pop(expected[position])
                position += 1
        if position != len(expected):
            raise ArchiveError(f"Ray returned {position} of {len(expected)} chunks")
    finally:
        if started:
            ray.shutdown()
