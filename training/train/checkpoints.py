"""Resuming a run: which checkpoint to continue from, and whether this config may.

Every checkpoint carries the run config that made it (`run_config.json`, written after
the Trainer's own files). `--resume` continues from the newest checkpoint the Trainer
finished writing (one interrupted while saving lacks `trainer_state.json` and is skipped,
with a warning) and refuses a config that differs in what shapes the weights: the seed,
the data, the segmenter or the model. Training settings (`train.*`, and the tiny
backbone's own `model.tiny.epochs`/`max_minutes`) may change between runs.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..common.atomic import atomic_file, write_json
from .config import RunConfig

log = logging.getLogger("training")

CONFIG_FILE = "run_config.json"
STATE_FILE = "trainer_state.json"  # the Trainer writes it last: its presence marks a finished save
FIXED_SECTIONS = ("seed", "data", "segmenter", "model")
SCHEDULE_KEYS = ("model.tiny.epochs", "model.tiny.max_minutes")  # the tiny backbone's train.epochs/max_minutes


class SaveRunConfig(TrainerCallback):
    """Writes the run config into each checkpoint the Trainer saves."""

    def __init__(self, config: RunConfig):
        self.config = config.to_dict()

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            with atomic_file(folder / CONFIG_FILE) as staging:
                write_json(staging, self.config)
        return control


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def resume_checkpoint(run_dir: Path, config: RunConfig) -> Path:
    """The checkpoint `--resume` continues from (see the module docstring)."""
    numbered = sorted((int(m.group(1)), path) for path in run_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                      if path.is_dir() and (m := re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", path.name)))
    complete = [path for _, path in numbered if (path / STATE_FILE).is_file()]
    for _, path in numbered:
        if path not in complete:
            log.warning("--resume: skipping %s: its save was interrupted (no %s)", path, STATE_FILE)
    if not complete:
        raise ValueError(f"--resume: no complete checkpoint in {run_dir}; rerun without --resume")
    checkpoint = complete[-1]
    try:
        saved = json.loads((checkpoint / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("--resume: %s records no run config; cannot check that it matches this one", checkpoint)
        return checkpoint
    before, now = _flat({k: saved.get(k) for k in FIXED_SECTIONS}), _flat({k: config.to_dict()[k] for k in FIXED_SECTIONS})
    changed = [f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(before) | set(now))
               if before.get(key) != now.get(key) and key not in SCHEDULE_KEYS]
    if changed:
        shown = changed[:5] + ([f"and {len(changed) - 5} more"] if len(changed) > 5 else [])
        raise ValueError(f"--resume: {checkpoint} was made with other settings ({'; '.join(shown)}); only train.* "
                         "and model.tiny.epochs/max_minutes may change on resume: rerun without --resume to start over")
    return checkpoint
