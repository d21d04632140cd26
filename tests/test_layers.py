"""The package's layering, checked two ways.

Layers (subpackages of `training/`), lowest first; a module may import only its own
layer and the ones below it:

    common -> text -> data -> model -> inference -> train -> (studio | analysis) -> CLI

`studio` and `analysis` share the top layer but neither imports the other. The CLI
modules are the top-level `training/*.py` files and `training/studio/__main__.py`;
`training/__init__.py` exposes the inference API (lazily) and so ranks as `inference`.

* Runtime: each layer's modules are all imported in a fresh interpreter, whose
  `sys.modules` must then hold no module of a higher (or sibling) layer, nor a
  dependency the layer must not need (torch below `model`, the training, Label Studio
  and plotting extras below `train`). An import recorder names the chain that pulled
  the offending module in.
* Static: every import under `training/` (relative or `training.`-absolute, at module
  level or inside a function) targets the same or a lower layer. This catches the
  lazy imports the runtime check never executes.
* The studio client commands work where torch cannot be imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "training"

# layer -> rank; equal ranks with different names are siblings and may not import each other
RANK = {"common": 0, "text": 1, "data": 2, "model": 3, "inference": 4, "train": 5,
        "studio": 6, "analysis": 6, "cli": 7}
ROOT_LAYER = "inference"  # training/__init__.py: lazily exposes load_model/predict

# the extras' import names (pyproject: train, studio, report)
TRAIN_EXTRAS = {"datasets", "seqeval", "accelerate", "yaml"}
STUDIO_EXTRAS = {"label_studio_sdk", "label_studio", "flask"}
REPORT_EXTRAS = {"matplotlib"}
EXTRAS = TRAIN_EXTRAS | STUDIO_EXTRAS | REPORT_EXTRAS

# third-party top-level packages a layer's modules must not load when imported
FORBIDDEN = {
    "common": EXTRAS | {"torch", "transformers"},
    "text": EXTRAS | {"torch", "transformers"},
    "data": EXTRAS | {"torch", "transformers"},
    "model": EXTRAS,
    "inference": EXTRAS,
}
# PyYAML is a requirement of transformers, huggingface_hub and underthesea (and
# huggingface_hub imports it at import time): loaded by one of them it is no violation
TRANSITIVE_OK = {"yaml": {"transformers", "huggingface_hub", "underthesea"}}
# single modules with a documented promise of their own: `python -m training.stats`
# runs on the base install without torch (analysis.corpus is what it uses)
MODULE_FORBIDDEN = {
    "training.stats": EXTRAS | {"torch", "transformers"},
    "training.analysis.corpus": EXTRAS | {"torch", "transformers"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def layer_of(name: str) -> str:
    """The layer of `training...` module `name` (a module or package that exists or not)."""
    parts = name.split(".")
    assert parts[0] == "training", name
    if len(parts) == 1:
        return ROOT_LAYER
    if (PACKAGE / parts[1]).is_dir() or parts[1] in RANK:
        if parts[1] not in RANK or parts[1] == "cli":
            raise AssertionError(f"training/{parts[1]}/ is not a known layer: add it to RANK in {__file__}")
        if parts[1:3] == ["studio", "__main__"]:
            return "cli"
        return parts[1]
    if (PACKAGE / f"{parts[1]}.py").is_file():
        return "cli"  # every top-level module is a command-line entry point
    return ROOT_LAYER  # `from training import load_model`: an attribute of the root package


def may_import(source: str, target: str) -> bool:
    return RANK[target] < RANK[source] or target == source


def layer_modules(layer: str) -> list[str]:
    return [name for name in all_modules() if name != "training" and layer_of(name) == layer]


def existing_layers() -> list[str]:
    return [layer for layer in RANK if layer != "cli" and (PACKAGE / layer).is_dir()]


def test_every_subpackage_is_a_known_layer():
    unknown = sorted(p.name for p in PACKAGE.iterdir()
                     if p.is_dir() and (p / "__init__.py").is_file() and p.name not in RANK)
    assert not unknown, f"subpackages of training/ that are not a known layer: {unknown}"
    for layer in ("common", "text", "data", "model", "inference", "train", "studio"):
        assert (PACKAGE / layer / "__init__.py").is_file(), f"layer {layer} is missing"


# ---------------------------------------------------------------------------------------
# runtime: what importing a layer loads

# Runs in the fresh interpreter. A meta path finder that finds nothing but, on each first
# import of a module, records which module's code asked for it (the innermost frame that
# is neither importlib's nor this recorder's), so a chain can be traced back.
RECORDER = textwrap.dedent('''
    import importlib, json, sys

    class Recorder:
        parents = {}

        def find_spec(self, name, path=None, target=None):
            if name not in sys.modules:
                frame = sys._getframe(1)
                while frame is not None:
                    importer = frame.f_globals.get("__name__", "?")
                    if not importer.startswith(("importlib", "_frozen_importlib")):
                        break
                    frame = frame.f_back
                self.parents[name] = importer if frame is not None else "?"
            return None

    recorder = Recorder()
    sys.meta_path.insert(0, recorder)
    baseline = sorted(sys.modules)
    modules, out = sys.argv[1].split(","), sys.argv[2]
    for module in modules:
        importlib.import_module(module)
    sys.meta_path.remove(recorder)
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"baseline": baseline, "loaded": sorted(sys.modules), "parents": Recorder.parents}, f)
''')


def import_in_fresh_interpreter(modules: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", RECORDER, ",".join(modules), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"importing {modules} failed:\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text(encoding="utf-8"))


def chain(result: dict, name: str) -> str:
    """`a -> b -> name`: who imported whom, from the first module the driver imported."""
    links, seen = [name], {name}
    parent = result["parents"].get(name)
    while parent and parent not in ("__main__", "?") and parent not in seen:
        links.append(parent)
        seen.add(parent)
        parent = result["parents"].get(parent)
    if name in result["baseline"]:
        links.append("(already loaded when the interpreter started)")
    return " -> ".join(reversed(links))


def violations(result: dict, layer: str | None, forbidden: set[str]) -> list[str]:
    problems = []
    for name in result["loaded"]:
        top = name.split(".")[0]
        if name == "training":
            continue  # every import loads the root package; its lazy API shows as training.inference
        if top == "training" and layer is not None:
            target = layer_of(name)
            if not may_import(layer, target):
                problems.append(f"{layer} pulled in {name} (layer {target}): {chain(result, name)}")
        elif top in forbidden and name == top:
            if result["parents"].get(name, "").split(".")[0] in TRANSITIVE_OK.get(name, ()):
                continue
            problems.append(f"{layer or 'module'} pulled in {name}: {chain(result, name)}")
    return problems


@pytest.mark.parametrize("layer", [layer for layer in RANK if layer != "cli"])
def test_layer_imports_only_lower_layers(layer, tmp_path):
    if not (PACKAGE / layer).is_dir():
        pytest.skip(f"training/{layer}/ does not exist (yet)")
    modules = layer_modules(layer)
    assert modules, f"training/{layer}/ has no modules"
    result = import_in_fresh_interpreter(modules, tmp_path)
    assert set(modules) <= set(result["loaded"])
    problems = violations(result, layer, FORBIDDEN.get(layer, set()))
    assert not problems, f"importing layer {layer!r} ({len(modules)} modules):\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("module", sorted(MODULE_FORBIDDEN))
def test_base_install_modules_need_no_torch_or_extras(module, tmp_path):
    if module not in all_modules():
        pytest.skip(f"{module} does not exist (yet)")
    result = import_in_fresh_interpreter([module], tmp_path)
    problems = violations(result, None, MODULE_FORBIDDEN[module])
    assert not problems, f"importing {module}:\n  " + "\n  ".join(problems)


def test_recorder_names_the_chain(tmp_path):
    """The runtime check can fail, and says why: `training.data` pulling in a model
    module (through a stand-in module that does) is reported with its chain."""
    bad = tmp_path / "pkg"
    bad.mkdir()
    (bad / "culprit.py").write_text("import training.model.decoding\nimport yaml\n", encoding="utf-8")
    modules = ["training.data.readers", "culprit"]
    out = tmp_path / "modules.json"
    env_path = f"import sys; sys.path.insert(0, {str(bad)!r})\n"
    proc = subprocess.run([sys.executable, "-c", env_path + RECORDER, ",".join(modules), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    problems = violations(result, "data", FORBIDDEN["data"])
    assert any("training.model.decoding (layer model): culprit -> training.model.decoding" in p
               for p in problems), problems
    assert any(p.startswith("data pulled in torch: culprit -> training.model.decoding") for p in problems), problems
    assert "data pulled in yaml: culprit -> yaml" in problems, problems


def test_yaml_through_huggingface_hub_is_no_violation():
    result = {"baseline": [], "loaded": ["huggingface_hub", "training.inference.model", "yaml"],
              "parents": {"huggingface_hub": "training.inference.model", "yaml": "huggingface_hub.utils._fixes"}}
    assert violations(result, "inference", FORBIDDEN["inference"]) == []
    result["parents"]["yaml"] = "training.inference.model"
    assert violations(result, "inference", FORBIDDEN["inference"]) == [
        "inference pulled in yaml: training.inference.model -> yaml"]


# ---------------------------------------------------------------------------------------
# static: every import statement under training/, lazy ones included


def imported_targets(tree: ast.AST, name: str, is_package: bool):
    """(line, absolute target module) for every import of a `training` module."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "training":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    yield node.lineno, f"<relative import above the package: {'.' * node.level}{node.module or ''}>"
                    continue
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
                if module.split(".")[0] != "training":
                    continue
            if module == "training":
                # `from .. import inference`, `from training import load_model`: the names
                # are the targets (submodules, or attributes of the root package)
                for alias in node.names:
                    yield node.lineno, f"training.{alias.name}"
            else:
                yield node.lineno, module


def static_violations() -> list[str]:
    problems = []
    for name, path in all_modules().items():
        source = layer_of(name)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in imported_targets(tree, name, path.name == "__init__.py"):
            rel = path.relative_to(ROOT)
            if target.startswith("<"):
                problems.append(f"{rel}:{line}: {target}")
                continue
            target_layer = layer_of(target)
            if not may_import(source, target_layer):
                problems.append(f"{rel}:{line}: {name} (layer {source}) imports {target} (layer {target_layer})")
    return problems


def test_static_imports_go_down_only():
    problems = static_violations()
    assert not problems, "imports that go up (or sideways) a layer:\n  " + "\n  ".join(problems)


def test_static_check_can_fail(monkeypatch, tmp_path):
    """A lazy, upward import inside a function is caught, with file and line."""
    fake = tmp_path / "training"
    (fake / "text").mkdir(parents=True)
    (fake / "train").mkdir()
    (fake / "__init__.py").write_text("", encoding="utf-8")
    (fake / "text" / "__init__.py").write_text("", encoding="utf-8")
    (fake / "train" / "__init__.py").write_text("", encoding="utf-8")
    (fake / "text" / "bad.py").write_text("def f():\n    from ..train import loop\n", encoding="utf-8")
    (fake / "text" / "worse.py").write_text("def g():\n    import training.studio.client\n", encoding="utf-8")
    (fake / "train" / "fine.py").write_text("from ..text import bad\nfrom training import text\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    problems = static_violations()
    assert problems == [
        "training/text/bad.py:2: training.text.bad (layer text) imports training.train (layer train)",
        "training/text/worse.py:2: training.text.worse (layer text) imports training.studio.client (layer studio)",
    ], problems


# ---------------------------------------------------------------------------------------
# the studio client commands do not need torch

NO_TORCH = textwrap.dedent('''
    import sys

    class NoTorch:
        attempts = []

        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                self.attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
''')


def test_studio_imports_without_torch():
    code = NO_TORCH + textwrap.dedent('''
        import training.studio.client, training.studio.sync, training.studio.server
        import training.studio.__main__
        assert "torch" not in sys.modules
        print("ok", NoTorch.attempts)
    ''')
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("ok"), proc.stdout


@pytest.mark.parametrize("command", [[], ["serve"], ["push"], ["pull"], ["preannotate"], ["backend"], ["connect"]])
def test_studio_help_without_torch(command):
    code = NO_TORCH + "import runpy\nrunpy.run_module('training.studio', run_name='__main__', alter_sys=True)\n"
    proc = subprocess.run([sys.executable, "-c", code, *command, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.startswith("usage: python -m training.studio"), proc.stdout[:500]


def test_the_predict_command_never_shadows_the_predict_function():
    """`import training.predict` would rebind `training.predict` to the command module; it is refused."""
    code = textwrap.dedent("""
        import training
        try:
            import training.predict
        except ImportError as exc:
            assert "from training import predict" in str(exc), exc
        else:
            raise SystemExit("importing the command module succeeded")
        from training import predict
        assert callable(predict) and predict.__module__ == "training.inference.model", predict
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    help_text = subprocess.run([sys.executable, "-m", "training.predict", "--help"], cwd=ROOT,
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and "--model" in help_text.stdout, help_text.stderr
