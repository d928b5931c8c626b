"""Tests for case-file loading, validation and overrides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from surrogate.config import (
    CaseConfig,
    ConfigError,
    ConfigModel,
    RunConfig,
    SolverConfig,
    config_hash,
    dump_config,
    load_case,
    load_config,
)

VALID_CASE = """
name: channel180
description: a small test case
grid: {nx: 16, ny: 17, nz: 8, stretching: 2.0}
physics: {re_tau: 180}
solver: {cfl: 0.5}
initial: {kind: turbulent, seed: 3}
run: {t_end: 50.0, snapshot_interval: 2}
"""


def write_case(tmp_path: Path, text: str = VALID_CASE, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edited_case(tmp_path: Path, **changes: dict) -> Path:
    """Write the valid case with some sections updated (a value of None removes the section)."""
    data = yaml.safe_load(VALID_CASE)
    for section, values in changes.items():
        if values is None:
            data.pop(section)
        elif isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    return write_case(tmp_path, yaml.safe_dump(data), name="edited.yaml")


def test_valid_case_loads_with_defaults(tmp_path):
    case = load_case(write_case(tmp_path))
    assert isinstance(case, CaseConfig)
    assert case.name == "channel180"
    assert (case.grid.nx, case.grid.ny, case.grid.nz) == (16, 17, 8)
    assert case.grid.lx == pytest.approx(2 * math.pi)
    assert case.physics.re_tau == 180.0 and isinstance(case.physics.re_tau, float)
    assert case.physics.forcing == "constant_flow_rate"
    assert case.physics.bulk_velocity is None
    assert case.solver == SolverConfig(cfl=0.5)
    assert case.initial.seed == 3
    assert case.run.t_end == 50.0 and case.run.steps is None
    assert case.output_dir() == Path("runs/channel180")


def test_mapping_source_and_dump_round_trip(tmp_path):
    case = load_case(write_case(tmp_path))
    dumped = dump_config(case)
    assert yaml.safe_load(yaml.safe_dump(dumped)) == dumped
    again = load_config(CaseConfig, dumped)
    assert again == case
    assert config_hash(again) == config_hash(case)
    assert len(config_hash(case)) == 12
    other = case.model_copy(update={"solver": SolverConfig(cfl=0.6)})
    assert config_hash(other) != config_hash(case)


def test_unknown_key_suggests_closest(tmp_path):
    path = edited_case(tmp_path, solver={"cfll": 0.5})
    with pytest.raises(ConfigError) as info:
        load_case(path)
    message = str(info.value)
    assert "edited.yaml" in message
    assert "solver.cfll" in message
    assert "did you mean 'cfl'" in message
    assert "cfl, compile, device, dt, dtype" in message


def test_unknown_top_level_key(tmp_path):
    path = edited_case(tmp_path, physic={"re_tau": 180})
    with pytest.raises(ConfigError, match=r"unknown key 'physic'; did you mean 'physics'"):
        load_case(path)


def test_wrong_type(tmp_path):
    path = edited_case(tmp_path, grid={"nx": 16.5})
    with pytest.raises(ConfigError) as info:
        load_case(path)
    message = str(info.value)
    assert "edited.yaml" in message and "grid.nx" in message and "16.5" in message
    assert "expected an integer" in message


def test_bool_is_not_a_number(tmp_path):
    with pytest.raises(ConfigError, match=r"physics.re_tau.*True.*expected a number"):
        load_case(edited_case(tmp_path, physics={"re_tau": True}))


def test_int_accepted_for_float_and_exponent_text(tmp_path):
    case = load_case(edited_case(tmp_path, solver={"dt": "1e-3"}))
    assert case.solver.dt == 1e-3


def test_bad_literal_lists_choices(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_case(edited_case(tmp_path, initial={"kind": "laminr"}))
    message = str(info.value)
    assert "initial.kind" in message and "'laminr'" in message
    assert "'laminar', 'turbulent', 'file'" in message
    assert "did you mean 'laminar'" in message


def test_missing_required_key(tmp_path):
    data = yaml.safe_load(VALID_CASE)
    del data["grid"]["ny"]
    path = write_case(tmp_path, yaml.safe_dump(data), name="missing.yaml")
    with pytest.raises(ConfigError, match=r"missing\.yaml: missing required key 'grid\.ny'"):
        load_case(path)


def test_missing_required_section(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key 'physics'"):
        load_case(edited_case(tmp_path, physics=None))


def test_override_changes_values(tmp_path):
    case = load_case(
        write_case(tmp_path),
        ["solver.dt=0.002", "initial.kind=laminar", "run.steps=100", "run.t_end=null", "grid.stretching=0"],
    )
    assert case.solver.dt == 0.002
    assert case.initial.kind == "laminar"
    assert case.run.steps == 100 and case.run.t_end is None
    assert case.grid.stretching == 0.0


def test_override_of_default_section(tmp_path):
    case = load_case(edited_case(tmp_path, solver=None), ["solver.dtype=float32"])
    assert case.solver.dtype == "float32"


def test_override_of_unknown_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_case(write_case(tmp_path), ["solver.cfll=0.3"])
    message = str(info.value)
    assert "command line" in message and "solver.cfll=0.3" in message
    assert "did you mean 'cfl'" in message
    assert "case.yaml" in message


def test_override_is_type_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"command-line override 'solver\.dtype=float16'.*solver\.dtype.*'float16'"):
        load_case(write_case(tmp_path), ["solver.dtype=float16"])


def test_the_subgrid_update_is_read_and_checked(tmp_path):
    assert load_case(write_case(tmp_path), ["solver.sgs_update=step"]).solver.sgs_update == "step"
    with pytest.raises(ConfigError, match=r"solver\.sgs_update.*'stage'"):
        load_case(write_case(tmp_path), ["solver.sgs_update=stage"])


def test_malformed_override(tmp_path):
    with pytest.raises(ConfigError, match="section.key=value"):
        load_case(write_case(tmp_path), ["solver.dt"])
    with pytest.raises(ConfigError, match="not a section"):
        load_case(write_case(tmp_path), ["solver.dt.x=1"])


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"grid": {"ny": 1}}, r"invalid section 'grid'.*ny must be at least 2"),
        ({"grid": {"stretching": -1.0}}, r"invalid section 'grid'.*stretching"),
        ({"solver": {"cfl": 2.5}}, r"invalid section 'solver'.*cfl must be in \(0, 2\]"),
        ({"solver": {"dt": -0.1}}, r"invalid section 'solver'.*dt must be positive"),
        ({"initial": {"kind": "file"}}, r"invalid section 'initial'.*needs path"),
        ({"initial": {"path": "x.nc"}}, r"invalid section 'initial'.*path is only used"),
        ({"run": {"steps": 10}}, r"invalid section 'run'.*exactly one of t_end and steps"),
        ({"run": {"output": "runs/{case}"}}, r"invalid section 'run'.*placeholder"),
        ({"physics": {"re_tau": -5}}, r"invalid section 'physics'.*re_tau must be positive"),
        ({"name": ""}, r"invalid section 'top level'.*name must not be empty"),
    ],
)
def test_validate_errors(tmp_path, changes, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_case(edited_case(tmp_path, **changes))
    assert "edited.yaml" in str(info.value)


def test_default_section_is_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"'run' \(not given.*exactly one of t_end and steps"):
        load_case(edited_case(tmp_path, run=None))


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_case(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_case(write_case(tmp_path, "grid: [1, 2", name="bad.yaml"))
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        load_case(write_case(tmp_path, "- 1\n- 2\n", name="list.yaml"))


class _Inner(ConfigModel):
    widths: list[int] = [1, 2]
    window: tuple[float, float] = (0.0, 1.0)


class _Outer(ConfigModel):
    inner: _Inner | None = None
    tags: dict[str, str] = {}


def test_generic_containers_and_optional_sections():
    loaded = load_config(_Outer, {"inner": {"widths": [3, 4, 5], "window": [1, 2]}, "tags": {"a": "b"}})
    assert loaded.inner == _Inner(widths=[3, 4, 5], window=(1.0, 2.0))
    assert load_config(_Outer, {}).inner is None
    assert load_config(_Outer, {}, ["inner.window=[0.5, 1.5]"]).inner.window == (0.5, 1.5)
    with pytest.raises(ConfigError, match=r"inner\.widths\[1\].*'x'.*expected an integer"):
        load_config(_Outer, {"inner": {"widths": [1, "x"]}})
    with pytest.raises(ConfigError, match=r"inner\.window.*expected a list of 2 items"):
        load_config(_Outer, {"inner": {"window": [1, 2, 3]}})


def test_run_config_defaults_need_a_length():
    assert RunConfig(steps=5).output == "runs/{name}"


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: a\nrun:\n  t_end: 1.0\n  t_end: 2.0\n")
    with pytest.raises(ConfigError, match=r"twice.yaml: not valid YAML: key 't_end' is given twice \(lines 3 and 4\)"):
        load_case(path)


def test_a_case_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 9\)"):
        load_case(path)


@pytest.mark.parametrize("device, message", [("gpu", "is not a torch device name"), ("cuda", "CUDA is not available"), ("tpu", "is not a torch device name")])
def test_a_device_this_machine_lacks_is_refused(tmp_path, device, message):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    path = tmp_path / "case.yaml"
    path.write_text(VALID_CASE)
    with pytest.raises(ConfigError, match=rf"solver.device.*{message}"):
        load_case(path, [f"solver.device={device}"])


def test_errors_are_one_line_without_validation_library_text(tmp_path):
    for changes in ({"grid": {"nx": 16.5}}, {"solver": {"cfll": 1}}, {"run": {"steps": 3}}, {"sgs": {"parameters": {"cs": [1]}}}):
        with pytest.raises(ConfigError) as info:
            load_case(edited_case(tmp_path, **changes))
        message = str(info.value)
        assert "\n" not in message and "pydantic" not in message.lower() and "errors.pydantic.dev" not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_bad_key_of_a_mapping_is_named_with_the_keys_it_may_have():
    from surrogate.config import load_closure_case

    case = {"name": "c", "dataset": "d", "training": {"profile_weights": {"w_rms": 4.0, "w_rsm": 1.0}}}
    with pytest.raises(ConfigError) as info:
        load_closure_case(case)
    message = str(info.value)
    assert "bad key 'w_rsm' in 'training.profile_weights'" in message
    assert "'U', 'u_rms', 'v_rms', 'w_rms', 'uv'" in message and "did you mean 'w_rms'" in message
