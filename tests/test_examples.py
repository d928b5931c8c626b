"""The example notebook runs from start to end (slow: it runs the quick case)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    matplotlib.use("Agg")
    shutil.copytree(ROOT / "cases", tmp_path / "cases")
    monkeypatch.chdir(tmp_path)
    notebook = json.loads((ROOT / "examples" / "quickstart.ipynb").read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "quickstart.ipynb", "exec"), namespace)
    assert 120 < namespace["ds"].channel.re_tau(t_start=3.0) < 260
    assert namespace["table"].sizes["run"] == 1
    assert (tmp_path / "runs" / "notebook_quick" / "report" / "report.html").exists()
