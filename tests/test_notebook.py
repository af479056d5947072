"""notebooks/analyze_sweep.ipynb runs top to bottom on a small sweep and draws its figures."""
import os

import pytest

from tests.helpers import ROOT, write_run

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "notebooks" / "analyze_sweep.ipynb"


def _kernel_name() -> str:
    """`python3` from this environment; installed into it (--sys-prefix) if Jupyter lacks one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        from ipykernel.kernelspec import install
        install(prefix=os.sys.prefix, kernel_name="python3")
    return "python3"


def test_notebook_executes(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    wc = {"layers": ["embeddings", "layer.0", "layer.1", "head"], "l2": [0.01, 0.02, 0.05, 0.3]}
    for seed, (a, b) in enumerate([(0.62, 0.66), (0.58, 0.70), (0.48, 0.69)]):
        history = [{"step": 5, "val": a - 0.05}, {"step": 10, "val": a}]
        write_run(sweep, f"method=standard,seed={seed}", seed=seed, val=a, test=a,
                  status="failed" if a < 0.5 else "ok", weight_change=wc, history=history)
        write_run(sweep, f"method=reinit,seed={seed}", method="reinit", seed=seed, val=b, test=b, history=history)
    write_run(sweep, "method=reinit,seed=9", method="reinit", seed=9, status="error", error="RuntimeError: x")
    monkeypatch.setenv("STABILIZE_SWEEP", str(sweep))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=_kernel_name(),
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on any failing cell

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "7 runs under" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the per-size figure and the validation curves
    markdown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "Welch" in markdown and "| reinit" in markdown
