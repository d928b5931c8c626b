"""The wheel carries every file the package reads at run time.

Builds the wheel of this checkout (``pip wheel``, as ``pip install .`` would), installs it into a
bare folder and, from another working folder, loads what the code reads from package data.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import surrogate, sys, tempfile
from pathlib import Path
from surrogate.references import REFERENCE_NAMES, default_reference_dir
from surrogate.evaluation import load_reference
assert Path(surrogate.__file__).is_relative_to(Path(sys.argv[1])), surrogate.__file__
for name in REFERENCE_NAMES:
    assert load_reference(name)["y_plus"].size > 10, name
cards = surrogate.pretrained_models()
assert cards
with tempfile.TemporaryDirectory() as out:
    for card in cards:
        result = surrogate.rollout_pretrained(card.name, steps=2, path=Path(out) / f"{card.name}.nc", progress=False)
        assert result.completed and result.steps == 2, card.name
from surrogate.solver.neural_sgs import NeuralEddyViscosity, shipped_closures
assert shipped_closures()
for name in shipped_closures():
    NeuralEddyViscosity(weights=name)
print(default_reference_dir())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "setup.cfg", "README.md"):  # a clean tree: no build/ or egg-info left over
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "surrogate", source / "surrogate", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)], check=True)
    return next(out.glob("surrogate-*.whl"))


def test_wheel_holds_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "surrogate" / "resources").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names, sorted(shipped - names)


def test_installed_wheel_reads_its_data_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)], check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)], cwd=work, env={"PYTHONPATH": str(site), "PATH": ""}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).is_relative_to(site)
