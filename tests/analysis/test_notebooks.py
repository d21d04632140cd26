"""The notebooks run top to bottom from a clean kernel, and `python -m training.report`
writes every plot.

The notebooks are executed as Jupyter runs them: with the working directory set to
notebooks/ (their first cell finds the repository root from there and moves to it).
"""

import os
import subprocess
import sys
import time

import pytest

from conftest import GOLD, ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = ROOT / "notebooks"
BUDGET_S = 300  # both notebooks together, as CI runs them
CELL_TIMEOUT_S = 600  # a cell or the figures command may train the tiny model; slow on a busy machine
PNGS = {"corpus_entity_counts.png", "corpus_span_lengths.png", "corpus_surface_forms.png",
        "corpus_sentence_tokens.png", "model_per_type_f1.png", "model_confusion.png", "model_learning_curve.png"}


def execute(name: str):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


def outputs(nb, mime: str) -> list[str]:
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if mime in data:
                found.append(data[mime])
            elif mime == "text/plain" and output.get("output_type") == "stream":
                found.append(output.get("text", ""))
    return found


@pytest.mark.parametrize("name", ["01_corpus.ipynb", "02_model.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: stored with outputs"


def test_notebooks_run_top_to_bottom(monkeypatch):
    monkeypatch.delenv("NER_MODEL_DIR", raising=False)  # 02 trains the tiny model itself
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    corpus = execute("01_corpus.ipynb")
    model = execute("02_model.ipynb")
    elapsed = time.perf_counter() - started
    print(f"both notebooks: {elapsed:.1f} s")
    assert elapsed < BUDGET_S, f"the notebooks took {elapsed:.0f} s together; the budget is {BUDGET_S} s"

    assert len(outputs(corpus, "image/png")) >= 4
    corpus_html = "\n".join(outputs(corpus, "text/html"))
    assert "000_796d6a87ad8d1a6e.txt" in corpus_html and "244" in corpus_html  # counts table
    assert "whitespace at the edge trimmed" in corpus_html  # the flawed copy's warning is shown
    assert len(outputs(model, "image/png")) >= 3
    model_html = "\n".join(outputs(model, "text/html"))
    assert "<mark" in model_html and "predicted" in model_html and "micro avg" in model_html


def test_figures_command_writes_every_png(tmp_path):
    out = tmp_path / "figures"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # run from elsewhere: data paths are found from the repository root, not the cwd
    result = subprocess.run([sys.executable, "-m", "training.report", "--figures", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CELL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    written = {p.name for p in out.iterdir()}
    assert PNGS <= written and "worst_errors.html" in written
    for name in PNGS:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    assert "<mark" in (out / "worst_errors.html").read_text(encoding="utf-8")


def test_figure_functions_on_the_gold_corpus(gold, schema, segmenter):
    from matplotlib.figure import Figure

    from training.analysis import corpus, figures

    fig = figures.fig_entity_counts(gold, schema.labels)
    assert isinstance(fig, Figure)
    per_type = fig.axes[0]
    assert [t.get_text() for t in per_type.get_xticklabels()] == list(schema.labels)
    assert sum(bar.get_height() for bar in per_type.patches) == 244

    table = corpus.counts_table(gold, schema.labels)
    assert len(table.rows) == len(gold.documents) and table.footer == [["TOTAL", 97, 26, 55, 39, 27, 244]]
    assert "TOTAL" in str(table) and "<table>" in table._repr_html_()

    lengths = corpus.span_lengths(gold, segmenter)
    assert sum(len(v) for v in lengths.values()) == 244 and min(min(v) for v in lengths.values()) == 1

    fig = figures.fig_sentence_tokens([("doc", 40), ("doc", 300)])
    assert any(list(line.get_xdata()) == [256, 256] for line in fig.axes[0].lines)  # the limit is drawn

    flawed, change = corpus.read_flawed_copy(GOLD, schema)
    assert gold.warnings == [] and len(flawed.warnings) == 1 and "whitespace" in flawed.warnings[0]
    assert [len(d.spans) for d in flawed.documents] == [len(d.spans) for d in gold.documents]


def test_confusion_collapses_bio_to_types():
    from training.analysis.evaluation import confusion

    classes, counts = confusion([["B-ORG", "I-ORG", "O", "B-PER"]], [["B-ORG", "B-ORG", "B-LOC", "O"]],
                                ["ORG", "PER", "LOC"])
    assert classes == ["ORG", "PER", "LOC", "O"]
    assert counts[0][0] == 2 and counts[3][2] == 1 and counts[1][3] == 1
    assert sum(map(sum, counts)) == 4


def test_learning_curve_reads_the_trainer_log():
    from training.analysis.evaluation import learning_curve
    from training.analysis.figures import fig_learning_curve

    log = [{"loss": 2.0, "epoch": 0.5, "step": 5}, {"eval_loss": 1.5, "eval_f1": 0.2, "epoch": 1.0},
           {"train_runtime": 3.0, "epoch": 1.0}]
    curves = learning_curve(log)
    assert curves == {"loss": [(0.5, 2.0)], "eval_loss": [(1.0, 1.5)], "eval_f1": [(1.0, 0.2)]}
    assert fig_learning_curve(log).axes
