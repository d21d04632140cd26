"""Every README example that uses a trained model runs as written, after the quick start.

The examples are read from README.md itself, so an edited example is tested as edited:
the Python block and the shell commands of the "Predict" section (with its
subsections), in README order, the `python -m training.evaluate ... models/tiny-asean
...` command of "Train", and the `python -m training.report --figures ...` command of
"How the code is layered". They run in a temporary directory laid out as a checkout
after the quick start: `models/tiny-asean` (the session's tiny model, copied),
`annotations/` (linked to the repository's), and the input files the commands name
(`article.txt`, `other.txt`, `lines.txt`, `archive.jsonl`), with `python` on PATH being
this interpreter.

Not run here: in "Predict", `pip install ...` (it installs from the network) and the
`--engine ray` command (it needs a running Ray cluster); the "Annotate with Label
Studio" commands and its subsections (serve, push, pull, preannotate, backend,
versions, rollback, connect, agreement, review need a Label Studio server or its
exports; the studio tests cover them against a local server); and the training
commands of "Quick start" and "Train" other than `training.evaluate` (`training.run`
with the default, tiny, CV, resume, public-corpus and torchrun variants: each is a
training run of its own, which the training tests cover).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MODEL = "models/tiny-asean"
ARTICLE = "Ngày 23.7, Thứ trưởng Bộ Ngoại giao Đỗ Hùng Việt dẫn đầu đoàn Việt Nam dự Hội nghị ASEAN tại Viên Chăn.\n"


# commands of the Predict section this test does not run, and why
NOT_RUN = {"pip install": "installs from the network", "--engine ray": "needs a running Ray cluster"}


def section(title: str) -> str:
    """The README's `## title` section with its subsections, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.DOTALL | re.MULTILINE)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def shell_commands(text: str) -> list[str]:
    """The indented (4-space) command lines of a section, continuation lines joined."""
    commands, current = [], ""
    for line in text.splitlines():
        if not line.startswith("    ") or line.startswith("     ") and not current:
            continue
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        commands.append(current)
        current = ""
    return commands


def readme_command(prefix: str) -> str:
    """The first README command (indented, or in backticks) that starts with `prefix`."""
    indented = [c for c in shell_commands(README) if c.startswith(prefix)]
    quoted = re.findall(rf"`({re.escape(prefix)}[^`]*)`", README)
    found = indented + quoted
    assert found, f"README.md no longer shows a `{prefix}` command"
    return re.sub(r"\s+#.*$", "", found[0])  # a trailing comment is not part of the command


@pytest.fixture(scope="module")
def workdir(tiny_model_dir, tmp_path_factory) -> Path:
    """A directory laid out as a checkout after the quick start."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(tiny_model_dir, work / MODEL)
    (work / "annotations").symlink_to(ROOT / "annotations", target_is_directory=True)
    (work / "article.txt").write_text(ARTICLE, encoding="utf-8")
    (work / "other.txt").write_text("Bộ trưởng Bùi Thanh Sơn gặp đại diện Liên Hợp Quốc tại Hà Nội.\n",
                                    encoding="utf-8")
    (work / "lines.txt").write_text(ARTICLE + "Ông Đỗ Hùng Việt phát biểu tại Jakarta.\n", encoding="utf-8")
    records = [{"id": 1, "text": ARTICLE.strip()}, {"id": 2, "text": "Hội nghị ASEAN khai mạc tại Hà Nội."}]
    (work / "archive.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                        encoding="utf-8")
    return work


def predict_commands() -> tuple[list[str], list[str]]:
    """(the Predict section's commands to run, those not run)."""
    commands = shell_commands(section("Predict"))
    skipped = [c for c in commands if any(marker in c for marker in NOT_RUN)]
    return [c for c in commands if c not in skipped], skipped


def run(command: list[str] | str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               HF_HUB_OFFLINE="1")
    shell = isinstance(command, str)
    result = subprocess.run(["bash", "-c", command] if shell else command, cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def test_the_readme_examples_are_found():
    predict = section("Predict")
    assert len(python_blocks(predict)) == 1
    commands, _ = predict_commands()
    assert len(commands) >= 2 and all(c.startswith(("python ", "cat ")) and MODEL in c for c in commands), commands
    assert MODEL in readme_command("python -m training.evaluate")
    assert "--figures" in readme_command("python -m training.report")


def test_the_python_example_runs(workdir):
    (code,) = python_blocks(section("Predict"))
    script = workdir / "example.py"
    # the example's last expressions print nothing when run as a script: show what they return
    script.write_text(f"{code}\nprint(repr(model.predict({ARTICLE.strip()!r})))\n", encoding="utf-8")
    result = run([sys.executable, str(script)], workdir)
    assert "Entity(" in result.stdout


def test_the_predict_commands_run(workdir):
    commands, _ = predict_commands()
    for command in commands:  # in README order, as a reader would type them
        result = run(command, workdir)
        if "--lines" in command:  # lines.txt holds two texts: one JSON object each
            assert len([line for line in result.stdout.splitlines() if line.strip()]) == 2, result.stdout
        for output in re.findall(r"(?:>|-o) (\S+\.jsonl)", command):
            lines = (workdir / output).read_text(encoding="utf-8").splitlines()
            assert lines and all("entities" in json.loads(line) for line in lines), command


def test_the_evaluate_command_runs(workdir):
    result = run(readme_command("python -m training.evaluate"), workdir)
    assert "micro avg" in result.stdout or "f1" in result.stdout.lower()
    assert (workdir / "errors.jsonl").is_file()


def test_the_report_command_runs(workdir):
    run(readme_command("python -m training.report --figures"), workdir)
    assert list((workdir / "figures").glob("*.png"))
