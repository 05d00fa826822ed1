"""The quickstart notebook executes end to end at small size (outputs stay stripped)."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"
TINY = "N_SIMS = 64\nN_PIX = 16\nEPOCHS = 1\nN_TEST = 8\nSEED = 0"


def test_notebook_outputs_are_stripped():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, "commit notebooks with outputs stripped"
            assert cell.execution_count is None


def test_quickstart_notebook_runs(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    params[0].source = TINY
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": tmp_path}},
    )
    client.execute()
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "log10_m_wdm" in text
