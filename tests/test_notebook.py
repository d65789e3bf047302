"""examples/cigan_infill.ipynb runs from top to bottom and shows an infilled lesion."""

import os
import pathlib
import subprocess
import sys

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "cigan_infill.ipynb"


def _kernel(tmp_path):
    """The name of a Python kernel of this interpreter, installing one if needed.

    A fresh CI machine may have ipykernel without any kernelspec: install one
    into a temporary prefix and point Jupyter at it.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        if spec.argv[0] in ("python", "python3", sys.executable):
            return "python3"
    except NoSuchKernel:
        pass
    prefix = tmp_path / "jupyter"
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                    "--name", "gan-zoo-test"], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")])
    return "gan-zoo-test"


@pytest.mark.slow
def test_cigan_notebook_infills_and_shows_a_lesion(tmp_path, monkeypatch):
    monkeypatch.delenv("CIGAN_RUN_DIR", raising=False)  # the notebook trains its demo ciGAN
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name=_kernel(tmp_path),
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "stream"
    )
    assert "pixels outside the mask unchanged: True" in text
    changed = float(text.split("mean change inside the mask: ")[1].split()[0])
    assert changed > 0.0
    assert "ciGAN for 64x64 patches" in text
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    assert len(images) == 1  # the figure with the six panels
