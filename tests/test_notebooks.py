"""Committed notebooks: no outputs, the lab's kernel, one parameters cell papermill reads whole, checks at the end."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

from kdq_lab.execution.kernel import KERNEL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def stored_results(notebook: nbformat.NotebookNode) -> list[str]:
    """Code cells that carry outputs or an execution count (what a committed notebook must not have)."""
    return [
        f"cell {i}: {'outputs' if cell.outputs else 'execution count'}"
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    assert stored_results(nbformat.read(path, as_version=4)) == [], f"{path.name}: strip outputs before committing"


def test_stored_outputs_are_noticed():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2")])
    notebook.cells[0].outputs = [nbformat.v4.new_output("stream", text="1")]
    notebook.cells[1].execution_count = 3
    assert stored_results(notebook) == ["cell 0: outputs", "cell 1: execution count"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_declares_the_lab_kernel(path):
    spec = nbformat.read(path, as_version=4).metadata.get("kernelspec", {})
    assert spec.get("name") == KERNEL and spec.get("language") == "python", f"{path.name}: kernelspec {spec}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_that_papermill_reads_whole(path):
    notebook = nbformat.read(path, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: exactly one cell tagged parameters"
    assigned = {t.id for node in ast.parse(cells[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert assigned and all(name.isupper() for name in assigned), "parameters are UPPER_CASE"
    # papermill skips a line it cannot parse (e.g. an '=' inside a default): such a name could not be checked
    assert set(papermill.inspect_notebook(str(path))) == assigned


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_ends_with_checked_claims(path):
    notebook = nbformat.read(path, as_version=4)
    last = [c for c in notebook.cells if c.cell_type == "code"][-1]
    assert "assert " in last.source and "all checks passed" in last.source
