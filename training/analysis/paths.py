"""Where the data is: the repository root, found from the working directory or from
this package, so notebooks (run from notebooks/) and `python -m training.report` (run
from anywhere) read the same files."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_EXPORT = "annotations/gold_export.json"
DEFAULT_LABELING_CONFIG = "annotations/labeling_config.xml"


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder, upwards from `start` (default: the
    current directory, then this package's location), holding `training/` and
    `annotations/`."""
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "training").is_dir() and (folder / "annotations").is_dir():
                return folder
    raise FileNotFoundError(f"no repository root (a folder with training/ and annotations/) above {candidates[0]}")


def resolve(path: str | os.PathLike) -> Path:
    """A data path as given if it exists, else relative to the repository root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    try:
        return repo_root() / path
    except FileNotFoundError:
        return path
