"""The layers point one way: the numerics of surrogate.solver import no file formats, no configuration and no progress bars."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOLVER = Path(__file__).resolve().parents[1] / "surrogate" / "solver"
FORBIDDEN = {"yaml", "netCDF4", "h5py", "tqdm", "surrogate.config", "surrogate.simulation", "surrogate.study"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ("surrogate." if node.level >= 2 else "surrogate.solver.") if node.level else ""
            names.add(base + (node.module or ""))
    return names


@pytest.mark.parametrize("path", sorted(SOLVER.glob("*.py")), ids=lambda p: p.name)
def test_the_solver_imports_no_io_configuration_or_progress_bar(path):
    found = {name for name in _imports(path) if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)}
    assert not found, f"{path.name} imports {sorted(found)}"
