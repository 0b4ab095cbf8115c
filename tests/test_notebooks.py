"""Committed notebooks: no outputs, one parameters cell that papermill reads whole, assertion cells at the end."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


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
