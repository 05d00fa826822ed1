"""The notebooks execute end to end at small size (outputs stay stripped)."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
# notebook -> (tiny parameters, text its outputs must contain)
TINY = {
    "quickstart.ipynb": (
        "N_SIMS = 64\nN_PIX = 16\nEPOCHS = 1\nN_TEST = 8\nSEED = 0",
        ("log10_m_wdm",),
    ),
    "anomaly_search.ipynb": (
        "N_TRAIN = 600\nN_TEST = 600\nEPOCHS = 1\nN_TOYS = 50\nSEED = 0",
        ("Deep SVDD (standardised)   AUC", "signal shift", "global p", "interesting"),
    ),
}


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_outputs_are_stripped(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, "commit notebooks with outputs stripped"
            assert cell.execution_count is None


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_runs(name, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    source, expected = TINY[name]
    params[0].source = source
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
    for piece in expected:
        assert piece in text, piece
