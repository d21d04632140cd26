import json
import logging
import os
from pathlib import Path

# huggingface_hub reads this once, at import: the tests never reach for the network
# (the hub is unreachable here; without it every failed load costs ~45 s of retries).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANNOTATIONS = ROOT / "annotations"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLD = ANNOTATIONS / "gold_export.json"


@pytest.fixture(scope="session")
def schema():
    from training.text.schema import read_labeling_config

    return read_labeling_config(ANNOTATIONS / "labeling_config.xml")


@pytest.fixture(scope="session")
def gold(schema):
    from training.data.readers import read_corpus

    return read_corpus(GOLD, schema=schema)


@pytest.fixture(scope="session")
def segmenter():
    from training.text.segmentation import get_segmenter

    return get_segmenter("underthesea")


def write_export(path: Path, tasks) -> Path:
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def make_task(text, spans, task_id=7, **annotation):
    """A one-task Label Studio export; spans are (start, end, label[, text])."""
    result = []
    for span in spans:
        start, end, label = span[:3]
        result.append({
            "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": span[3] if len(span) > 3 else text[start:end], "labels": [label]},
        })
    return {"id": task_id, "data": {"text": text}, "annotations": [{"id": 1, "result": result, **annotation}]}


ROOT_CONFIG = ROOT / "configs" / "tiny.yaml"


def tiny_config(tmp_dir: Path, *overrides: str):
    """The tiny config on a small budget, writing under `tmp_dir`."""
    from training.train.config import load_config

    return load_config(ROOT_CONFIG, [
        f"data.train={GOLD}", f"data.labeling_config={ANNOTATIONS / 'labeling_config.xml'}",
        "model.tiny.epochs=12", f"output.dir={tmp_dir / 'models'}", f"output.checkpoints={tmp_dir / 'ckpt'}",
        *overrides,
    ])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """One tiny model trained on the gold corpus, shared by the inference tests."""
    from training.train.pipeline import run_once

    tmp = tmp_path_factory.mktemp("tiny")
    return run_once(tiny_config(tmp), resume=False)


@pytest.fixture(autouse=True)
def restore_root_logging():
    """`training.run.main` installs a root handler on the stderr it sees, which is
    pytest's capture of that test; later tests would log into the closed capture."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
