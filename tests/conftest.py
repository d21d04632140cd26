import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANNOTATIONS = ROOT / "annotations"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLD = ANNOTATIONS / "gold_export.json"


@pytest.fixture(scope="session")
def schema():
    from training.schema import read_labeling_config

    return read_labeling_config(ANNOTATIONS / "labeling_config.xml")


@pytest.fixture(scope="session")
def gold(schema):
    from training.readers import read_corpus

    return read_corpus(GOLD, schema=schema)


@pytest.fixture(scope="session")
def segmenter():
    from training.segmentation import get_segmenter

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
