"""The ``surrogate les`` command: subgrid models from case files, and the commands' checks."""

from __future__ import annotations

import json

import numpy as np

import pytest

from surrogate.cli import main
from surrogate.fields import open_fields

LES_CASE = """
name: tiny_les
grid: {nx: 8, ny: 9, nz: 8, lx: 2.0, lz: 1.0, stretching: 1.5}
physics: {re_tau: 100.0, forcing: constant_flow_rate}
initial: {kind: turbulent, seed: 1, amplitude: 0.2}
sgs: {model: MODEL, parameters: PARAMETERS}
run: {t_end: 0.02, snapshot_interval: 0.01, checkpoint_interval: 0.01}
"""


def _case(tmp_path, model="wale", parameters="{}"):
    path = tmp_path / "les.yaml"
    path.write_text(LES_CASE.replace("MODEL", model).replace("PARAMETERS", parameters))
    return path


@pytest.mark.parametrize(
    "model, parameters",
    [("smagorinsky", "{cs: 0.12, a_plus: 26.0}"), ("wale", "{cw: 0.5}"), ("dynamic_smagorinsky", "{}"), ("none", "{}")],
)
def test_les_runs_each_model_and_records_it(tmp_path, model, parameters):
    case = _case(tmp_path, model, parameters)
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 0
    ds = open_fields(tmp_path / "tiny_les" / "fields.nc")
    recorded = ds.attrs["sgs_model"]
    if model == "none":
        assert recorded == "none"
    else:
        assert json.loads(recorded)["name"] == model


def test_les_needs_an_sgs_section_and_dns_refuses_one(tmp_path, capsys):
    case = _case(tmp_path)
    assert main(["dns", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "surrogate les" in capsys.readouterr().err
    plain = tmp_path / "dns.yaml"
    plain.write_text(LES_CASE.replace("sgs: {model: MODEL, parameters: PARAMETERS}\n", ""))
    assert main(["les", str(plain), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "needs one" in capsys.readouterr().err


def test_bad_model_parameter_is_named(tmp_path, capsys):
    case = _case(tmp_path, "wale", "{cs: 0.1}")
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "sgs.parameters" in err and "cs" in err


def test_unknown_model_name_suggests_the_closest(tmp_path, capsys):
    case = _case(tmp_path, "wael")
    assert main(["les", str(case), f"run.output={tmp_path}/{{name}}", "--quiet"]) == 2
    assert "did you mean 'wale'" in capsys.readouterr().err


def test_an_les_starts_from_the_shipped_developed_field_in_any_folder(tmp_path, monkeypatch):
    from pathlib import Path

    from surrogate.cli import main
    from surrogate.fields import open_fields
    from surrogate.references import field_reference_path

    case = Path(__file__).resolve().parents[1] / "cases" / "les_re180_learned.yaml"
    monkeypatch.chdir(tmp_path)
    args = ["les", str(case), "sgs={model: wale}", "run.t_end=60.2", "run.snapshot_interval=0.1", "--quiet"]
    assert main(args) == 0
    ds = open_fields(tmp_path / "runs" / "les_re180_learned" / "fields.nc")
    np.testing.assert_allclose(ds.time.values, [60.0, 60.1, 60.2], atol=1e-9)
    start = open_fields(field_reference_path("fdns180")).isel(time=-1)
    assert float(abs(ds.u.isel(time=0) - start.u).mean()) < 0.1 * float(abs(start.u).mean())
    learned = ["les", str(case), "run.t_end=60.1", "run.snapshot_interval=0.1", "name=learned", "--quiet"]
    assert main(learned) == 0  # the shipped closure neural-re180, found by name
    assert "neural-re180" in open_fields(tmp_path / "runs" / "learned" / "fields.nc").attrs["sgs_model"]
