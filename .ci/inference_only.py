"""The inference runtime on its own: run with the python of a clean venv that holds only
`pip install torch==2.13.0` and `pip install .` (no extras), from outside the checkout:

    python -I .ci/inference_only.py MODEL_DIR SEED.txt [SEED.txt ...]

Loads the exported model, runs predict() on every article (as given, and in NFD, whose
offsets must map back to the text as given) and checks that every entity's offsets are
exact: text[start:end] == entity.text. Fails when `training` comes from the checkout
rather than the installed package, or when a package that only the train, studio,
report or dev extras bring is importable.

PyYAML is the exception: transformers, huggingface_hub and underthesea all require it
(and huggingface_hub imports it at import time), so the runtime always has it. What is
checked instead: vi-news-ner itself requires it only in the `train` extra, and no
`training` module imports it (an import recorder names who did).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import time
import unicodedata
from pathlib import Path

# import names of what only the extras bring: train (datasets, seqeval, accelerate),
# studio (label_studio_sdk, label_studio, flask), report (matplotlib), dev (test tools)
NOT_INSTALLED = ["datasets", "seqeval", "accelerate", "label_studio_sdk", "label_studio", "flask", "matplotlib",
                 "pytest", "hypothesis", "sklearn_crfsuite"]
# in the runtime as a requirement of these distributions, never imported by `training`
TRANSITIVE = {"yaml": ("pyyaml", ["transformers", "huggingface_hub", "underthesea"])}


class ImportRecorder:
    """Finds nothing; records which module's code first imported each watched module."""

    def __init__(self, names):
        self.names, self.importers = set(names), {}

    def find_spec(self, name, path=None, target=None):
        if name in self.names and name not in sys.modules:
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                frame = frame.f_back
            self.importers[name] = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        return None


def fail(message: str) -> None:
    sys.stdout.flush()
    print(f"inference-only check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def requirement_names(dist: str) -> dict[str, str]:
    """{normalised name: marker} of a distribution's requirements."""
    out = {}
    for req in importlib.metadata.requires(dist) or []:
        spec, _, marker = req.partition(";")
        name = spec.strip().split("[")[0]
        for sep in "<>=!~ (":
            name = name.split(sep)[0]
        out[name.lower().replace("_", "-")] = marker.strip()
    return out


def check_environment() -> None:
    installed = [name for name in NOT_INSTALLED if importlib.util.find_spec(name) is not None]
    if installed:
        fail(f"importable in the inference-only environment: {', '.join(installed)}")
    for name in ["torch", "transformers", "safetensors", "underthesea", "numpy"]:
        if importlib.util.find_spec(name) is None:
            fail(f"{name} is not installed: `pip install .` must bring the whole runtime")
    ours = requirement_names("vi-news-ner")
    for module, (dist, requirers) in TRANSITIVE.items():
        if dist in ours and "extra ==" not in ours[dist]:
            fail(f"vi-news-ner requires {dist} outside the extras")
        if importlib.util.find_spec(module) is not None:
            why = [r for r in requirers if dist in requirement_names(r)
                   and "extra ==" not in requirement_names(r)[dist]]
            if not why:
                fail(f"{module} is importable but none of {requirers} requires {dist}")
            print(f"{module} is installed: required by {', '.join(why)} (not by vi-news-ner)")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        fail("usage: inference_only.py MODEL_DIR SEED.txt [SEED.txt ...]")
    model_dir, seeds = Path(argv[0]), [Path(p) for p in argv[1:]]
    recorder = ImportRecorder([*NOT_INSTALLED, *TRANSITIVE])
    sys.meta_path.insert(0, recorder)
    check_environment()

    import torch

    import training
    from training import load_model, predict

    checkout = Path(__file__).resolve().parent.parent
    if Path(training.__file__).resolve().is_relative_to(checkout):
        fail(f"training was imported from the checkout ({training.__file__}), not the installed package")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, training from {Path(training.__file__).parent}")

    started = time.perf_counter()
    model = load_model(model_dir)
    print(f"loaded {model_dir} in {time.perf_counter() - started:.1f}s: labels {model.labels}")

    texts = [seed.read_text(encoding="utf-8") for seed in seeds]
    nfd = [unicodedata.normalize("NFD", text) for text in texts]
    started = time.perf_counter()
    batches = model.predict(texts)
    nfd_batches = model.predict(nfd)
    one_call = predict(texts[0], model=model_dir)  # the one-call form, cached by path
    print(f"predicted {len(texts)} articles, as given and in NFD, in {time.perf_counter() - started:.1f}s")

    problems, total = [], 0
    named = [*zip([s.name for s in seeds], texts, batches), *zip([f"{s.name} (NFD)" for s in seeds], nfd, nfd_batches)]
    for name, source, entities in named:
        for e in entities:
            if not (0 <= e.start < e.end <= len(source)) or source[e.start:e.end] != e.text:
                problems.append(f"{name}: {e.label} {e.text!r} at [{e.start}:{e.end}] is {source[e.start:e.end]!r}")
            if e.label not in model.labels or not 0.0 <= e.score <= 1.0:
                problems.append(f"{name}: {e!r}: unknown label or score outside [0, 1]")
        total += len(entities)
    for seed, entities in zip(seeds, batches):
        print(f"  {seed.name}: {len(entities)} entities, e.g. {[(e.label, e.text) for e in entities[:3]]}")
    if not any(batches):
        problems.append("no entity in any article: no offset was checked")
    if [e.to_dict() for e in one_call] != [e.to_dict() for e in batches[0]]:
        problems.append("predict(text, model=dir) differs from load_model(dir).predict([...])[0]")
    if [[(e.label, unicodedata.normalize("NFC", e.text)) for e in b] for b in nfd_batches] != \
            [[(e.label, e.text) for e in b] for b in batches]:
        problems.append("the NFD articles do not give the entities of the articles as given")
    for module, importer in sorted(recorder.importers.items()):
        if module in sys.modules:
            allowed = TRANSITIVE.get(module, (None, []))[1]
            note = f"{module} imported by {importer}"
            if importer.split(".")[0] not in allowed:
                problems.append(f"load_model/predict: {note}")
            else:
                print(f"{note} (a requirement of it, not of training)")
    if problems:
        fail(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems[:50]))
    print(f"inference-only check passed: {total} entities in {len(named)} texts, all offsets exact; "
          f"not installed: {', '.join(NOT_INSTALLED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
