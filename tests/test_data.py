"""Filtered-DNS datasets: generation, resume, manifest, normalisation and training windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from surrogate.cli import main
from surrogate.config import ConfigError
from surrogate.data import (
    DatasetFolderError,
    ManifestError,
    Normalization,
    WindowDataset,
    generate_dataset,
    load_dataset_case,
    read_manifest,
    select_snapshots,
)
from surrogate.data import generate as generate_module
from surrogate.fields import make_fields, open_fields, write_fields
from surrogate.filtering import filter_to_grid
from surrogate.grid import ChannelGrid
from conftest import logged_messages

FINE = ChannelGrid(16, 17, 12, lx=2.0, lz=1.0, stretching=1.5)


def _dns_file(path, seed, times):
    """A synthetic 'DNS' field file: a mean profile plus random fluctuations."""
    rng = np.random.default_rng(seed)
    shape = (len(times),) + FINE.shape
    y = FINE.y[None, None, :, None]
    u = 10.0 * y * (2.0 - y) + rng.normal(size=shape)
    v, w, p = (rng.normal(size=shape) for _ in range(3))
    ds = make_fields(FINE, u, v, w, p=p, re_tau=100.0, time=np.asarray(times), attrs={"source": "test", "case": "synthetic"})
    return write_fields(ds, path)


@pytest.fixture()
def sources(tmp_path):
    times = np.round(np.arange(0.0, 1.0001, 0.1), 10)
    return [_dns_file(tmp_path / f"dns_{i}.nc", i, times) for i in range(3)]


def _case(tmp_path, sources, **changes):
    spec = {
        "name": "synthetic",
        "source": {"fields": [str(p) for p in sources], "t_start": 0.2},
        "coarse_grid": {"nx": 8, "ny": 9, "nz": 6, "stretching": 1.5},
        "dt_snapshot": 0.2,
        "split": {"test": 0.3},
        "output": str(tmp_path / "data" / "{name}"),
    }
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            spec[section][name] = value
        else:
            spec[section] = value
    return load_dataset_case(spec)


# ---------------------------------------------------------------------------- snapshot selection


def test_select_snapshots_takes_every_multiple_of_dt_from_t_start():
    times = np.arange(0.0, 2.0001, 0.1)
    np.testing.assert_array_equal(select_snapshots(times, 0.5, 0.3), [5, 8, 11, 14, 17, 20])


def test_select_snapshots_refuses_spacing_that_does_not_divide_dt():
    with pytest.raises(ValueError, match="multiple of the file's snapshot spacing"):
        select_snapshots(np.arange(0.0, 2.0, 0.3), 0.0, 0.2)


def test_select_snapshots_refuses_a_gap():
    times = np.array([0.0, 0.1, 0.2, 0.4, 0.5])
    with pytest.raises(ValueError, match="at least two"):
        select_snapshots(times, 0.0, 0.1)


def test_select_snapshots_after_the_end():
    with pytest.raises(ValueError, match="no snapshot at or after t_start = 5"):
        select_snapshots(np.arange(0.0, 1.0, 0.1), 5.0, 0.1)


# ---------------------------------------------------------------------------- case files


def test_case_needs_exactly_one_source(tmp_path, sources):
    with pytest.raises(ConfigError, match="exactly one of 'case'"):
        _case(tmp_path, sources, source={"fields": [str(sources[0])], "case": "x.yaml"})


def test_case_unknown_key_names_the_closest(tmp_path, sources):
    with pytest.raises(ConfigError, match="did you mean 'dt_snapshot'"):
        _case(tmp_path, sources, dt_snapshots=0.1)


# ---------------------------------------------------------------------------- generation


def test_dataset_files_hold_the_filtered_snapshots(tmp_path, sources):
    case = _case(tmp_path, sources)
    manifest = read_manifest(generate_dataset(case, progress=False))
    assert [t["file"] for t in manifest["trajectories"]] == ["trajectory_000.nc", "trajectory_001.nc", "trajectory_002.nc"]
    assert manifest["splits"]["test"] == [{"file": "trajectory_002.nc", "start": 0, "stop": 5}]
    assert len(manifest["splits"]["train"]) == 2
    coarse = ChannelGrid(8, 9, 6, lx=2.0, lz=1.0, stretching=1.5)
    assert ChannelGrid(**manifest["grid"]) == coarse

    expected = filter_to_grid(open_fields(sources[1]).sel(time=[0.2, 0.4, 0.6, 0.8, 1.0]), coarse, horizontal="box")
    got = open_fields(manifest["folder"] / "trajectory_001.nc")
    np.testing.assert_allclose(got.time.values, [0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-12)
    for name in ("u", "v", "w"):
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name].values, expected[name].values, rtol=1e-6, atol=1e-6)
    assert "p" not in got
    assert got.attrs["filter_horizontal"] == "box" and got.attrs["trajectory"] == 1
    assert got.attrs["source"] == "test"


def test_normalization_is_over_the_training_split(tmp_path, sources):
    manifest = read_manifest(generate_dataset(_case(tmp_path, sources), progress=False))
    norm = Normalization.load(manifest["folder"] / "normalization.nc")
    train = xr.concat([open_fields(manifest["folder"] / s["file"]) for s in manifest["splits"]["train"]], "time")
    for k, name in enumerate(("u", "v", "w")):
        data = train[name].values.astype(np.float64)
        np.testing.assert_allclose(norm.plane_mean[k], data.mean(axis=(0, 1, 3)), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(norm.plane_std[k], data.std(axis=(0, 1, 3)), rtol=1e-8)
        np.testing.assert_allclose(norm.mean[k], data.mean(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(norm.std[k], data.std(), rtol=1e-8)


def test_time_split_cuts_every_trajectory(tmp_path, sources):
    case = _case(tmp_path, sources, split={"test": 0.4, "by": "time"})
    manifest = read_manifest(generate_dataset(case, progress=False))
    assert manifest["splits"]["train"][0] == {"file": "trajectory_000.nc", "start": 0, "stop": 3}
    assert manifest["splits"]["test"][2] == {"file": "trajectory_002.nc", "start": 3, "stop": 5}


def test_split_by_trajectory_needs_a_training_trajectory(tmp_path, sources):
    case = _case(tmp_path, sources[:1])
    with pytest.raises(ConfigError, match="split.by: time"):
        generate_dataset(case, progress=False)


def test_rerun_keeps_a_finished_dataset_and_other_cases_are_refused(tmp_path, sources):
    case = _case(tmp_path, sources)
    path = generate_dataset(case, progress=False)
    stamp = (path.parent / "trajectory_000.nc").stat().st_mtime_ns
    with logged_messages() as messages:
        generate_dataset(case, progress=False)
    assert "already complete" in messages[0]
    assert (path.parent / "trajectory_000.nc").stat().st_mtime_ns == stamp
    other = _case(tmp_path, sources, dt_snapshot=0.1)
    with pytest.raises(DatasetFolderError, match="another case"):
        generate_dataset(other, progress=False)
    generate_dataset(other, overwrite=True, progress=False)
    assert read_manifest(path)["trajectories"][0]["snapshots"] == 9


def test_interrupted_generation_resumes_to_the_same_files(tmp_path, sources, monkeypatch):
    reference = read_manifest(generate_dataset(_case(tmp_path / "ref", sources), progress=False))
    case = _case(tmp_path, sources)
    real = generate_module.filter_to_grid
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:  # trajectory 1, third snapshot
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_module, "filter_to_grid", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(case, progress=False)
    folder = case.output_dir()
    assert not (folder / "manifest.yaml").exists()
    assert (folder / "trajectory_000.nc").exists()
    assert (folder / "trajectory_001.nc.partial").exists() and not (folder / "trajectory_001.nc").exists()
    with pytest.raises(ManifestError, match="has not finished"):
        read_manifest(folder)

    monkeypatch.setattr(generate_module, "filter_to_grid", real)
    manifest = read_manifest(generate_dataset(case, progress=False))
    for item in manifest["trajectories"]:
        a = open_fields(manifest["folder"] / item["file"])
        b = open_fields(reference["folder"] / item["file"])
        xr.testing.assert_equal(a[["u", "v", "w"]], b[["u", "v", "w"]])


def test_pressure_is_kept_when_asked(tmp_path, sources):
    manifest = read_manifest(generate_dataset(_case(tmp_path, sources, pressure=True), progress=False))
    assert manifest["variables"] == ["u", "v", "w", "p"]
    assert "p" in open_fields(manifest["folder"] / "trajectory_000.nc")


def test_dataset_command_runs_the_dns_of_a_case(tmp_path):
    (tmp_path / "dns.yaml").write_text(
        "name: tiny\n"
        "grid: {nx: 8, ny: 9, nz: 8, lx: 2.0, lz: 1.0, stretching: 1.5}\n"
        "physics: {re_tau: 100.0}\n"
        "initial: {kind: turbulent, seed: 1, amplitude: 0.2}\n"
        "run: {t_end: 0.08, snapshot_interval: 0.04, checkpoint_interval: 0.04}\n"
    )
    (tmp_path / "set.yaml").write_text(
        "name: tinyset\n"
        "source: {case: dns.yaml, trajectories: 2, seed: 5}\n"
        "coarse_grid: {nx: 4, ny: 5, nz: 4, stretching: 1.5}\n"
        "dt_snapshot: 0.02\n"
        "split: {test: 0.5}\n"
    )
    output = f"output={tmp_path}/out/{{name}}"
    assert main(["dataset", str(tmp_path / "set.yaml"), output, "--quiet"]) == 0
    manifest = read_manifest(tmp_path / "out" / "tinyset")
    assert [t["snapshots"] for t in manifest["trajectories"]] == [5, 5]
    dns = open_fields(tmp_path / "out" / "tinyset" / "dns" / "trajectory_001" / "fields.nc")
    assert dns.sizes["time"] == 5  # written every dt_snapshot, not every run.snapshot_interval
    a, b = (open_fields(manifest["folder"] / t["file"]) for t in manifest["trajectories"])
    assert not np.allclose(a.u.values[-1], b.u.values[-1])  # different seeds
    assert main(["dataset", str(tmp_path / "set.yaml"), output, "dt_snapshot=0.04", "--quiet"]) == 2


# ---------------------------------------------------------------------------- windows


@pytest.fixture()
def dataset(tmp_path, sources):
    case = _case(tmp_path, sources, split={"test": 0.4, "by": "time"}, dt_snapshot=0.1, **{"source.t_start": 0.0})
    return generate_dataset(case, progress=False)


def test_windows_have_the_documented_shapes_and_never_cross_a_split(dataset):
    # 11 snapshots per trajectory: 7 training ([0, 7)) and 4 test ([7, 11)).
    train = WindowDataset(dataset, "train", n_history=2, n_target=3)
    assert len(train) == 3 * (7 - 5 + 1)
    history, target = train[0]
    assert history.shape == (2, 3, 8, 9, 6) and target.shape == (3, 3, 8, 9, 6)
    assert history.dtype == torch.float32
    test = WindowDataset(dataset, "test", n_history=1, n_target=1, stride=2)
    assert len(test) == 3 * 2
    with pytest.raises(ValueError, match="no window of 5 snapshots"):
        WindowDataset(dataset, "test", n_history=2, n_target=3)


def test_window_values_are_the_normalised_snapshots(dataset):
    data = WindowDataset(dataset, "train", n_history=2, n_target=1, normalization=None, dtype=torch.float64)
    ds = open_fields(data.manifest["folder"] / "trajectory_001.nc")
    history, target = data[5 + 2]  # file 1 (5 windows per file), window starting at snapshot 2
    np.testing.assert_array_equal(history[1, 2].numpy(), ds.w.values[3])
    np.testing.assert_array_equal(target[0, 0].numpy(), ds.u.values[4])

    plane = WindowDataset(dataset, "train", n_history=2, n_target=1, dtype=torch.float64)
    h_norm, _ = plane[7]
    np.testing.assert_allclose(plane.denormalize(h_norm).numpy(), history.numpy(), rtol=1e-12, atol=1e-12)
    norm = plane.normalization
    expected = (ds.u.values[2] - norm.plane_mean[0][None, :, None]) / norm.plane_std[0][None, :, None]
    np.testing.assert_allclose(h_norm[0, 0].numpy(), expected, rtol=1e-6)


def test_normalised_training_data_have_zero_mean_and_unit_std_per_plane(dataset):
    data = WindowDataset(dataset, "train", n_history=1, n_target=1, dtype=torch.float64, in_memory=True)
    per_file = len(data) // 3  # 6 windows over the 7 training snapshots of each file
    # every training snapshot once: the history of each window plus the target of each file's last window
    snaps = [data[i][0][0] for i in range(len(data))] + [data[(k + 1) * per_file - 1][1][0] for k in range(3)]
    stacked = torch.stack(snaps)  # (n, 3, nx, ny, nz)
    mean = stacked.mean(dim=(0, 2, 4))
    std = stacked.std(dim=(0, 2, 4), unbiased=False)
    np.testing.assert_allclose(mean.numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(std.numpy(), 1.0, rtol=1e-6)


def test_component_normalisation_uses_one_number_per_variable(dataset):
    data = WindowDataset(dataset, "train", normalization="component", dtype=torch.float64)
    raw = WindowDataset(dataset, "train", normalization=None, dtype=torch.float64)
    h, _ = data[3]
    r, _ = raw[3]
    norm = data.normalization
    np.testing.assert_allclose(h[0, 1].numpy(), (r[0, 1].numpy() - norm.mean[1]) / norm.std[1], rtol=1e-10)


def test_in_memory_and_lazy_reading_agree_and_work_with_workers(dataset):
    lazy = WindowDataset(dataset, "test", n_history=2)
    memory = WindowDataset(dataset, "test", n_history=2, in_memory=True)
    for i in range(len(lazy)):
        torch.testing.assert_close(lazy[i], memory[i], rtol=0, atol=0)
    loader = torch.utils.data.DataLoader(lazy, batch_size=2, num_workers=1)
    batches = list(loader)
    assert sum(b[0].shape[0] for b in batches) == len(lazy)
    torch.testing.assert_close(batches[0][0][1], lazy[1][0], rtol=0, atol=0)


def test_unknown_split_and_variable_are_named(dataset):
    with pytest.raises(ValueError, match="split 'valid' is not in the dataset"):
        WindowDataset(dataset, "valid")
    with pytest.raises(ValueError, match=r"variables \['p'\] are not in the dataset"):
        WindowDataset(dataset, variables=("u", "p"))


def test_normalization_checks_the_tensor_shape(dataset):
    data = WindowDataset(dataset)
    with pytest.raises(ValueError, match=r"expected a tensor of shape \(\.\.\., 3, nx, 9, nz\)"):
        data.normalize(torch.zeros(2, 8, 9, 6))


# ---------------------------------------------------------------------------- augmentation


def test_augmented_windows_keep_the_dynamics_and_are_reproducible(advected):
    """Reflections and shifts commute with the dataset's advection in +x: target = roll(history, 1, x)."""
    from surrogate.data import WindowDataset

    data = WindowDataset(advected, "train", n_target=2, normalization=None, augment=["reflect_y", "reflect_z", "shift"], seed=3)
    plain = WindowDataset(advected, "train", n_target=2, normalization=None)
    changed = 0
    for i in range(len(data)):
        history, target = data[i]
        torch.testing.assert_close(target[0], history[-1].roll(1, dims=1))
        torch.testing.assert_close(target[1], history[-1].roll(2, dims=1))
        changed += not torch.equal(history, plain[i][0])
        torch.testing.assert_close(data[i][0], history)  # the same draw for the same epoch
    assert changed > 0
    data.set_epoch(1)
    assert any(not torch.equal(data[i][0], plain[i][0]) for i in range(len(data)))


def test_reflections_flip_the_sign_of_their_velocity_component(advected):
    from surrogate.data import WindowDataset

    plain = WindowDataset(advected, "train", normalization=None)
    raw = plain[0][0][0]
    for name, dim, sign in (("reflect_y", -2, (1, -1, 1)), ("reflect_z", -1, (1, 1, -1))):
        data = WindowDataset(advected, "train", normalization=None, augment=[name])
        for epoch in range(8):  # a reflection is drawn with probability 1/2
            data.set_epoch(epoch)
            out = data[0][0][0]
            if not torch.equal(out, raw):
                break
        mirrored = raw.flip(dim) if dim == -2 else raw.flip(dim).roll(1, dims=dim)
        torch.testing.assert_close(out, mirrored * torch.tensor(sign, dtype=raw.dtype)[:, None, None, None])


def test_unknown_augmentation_is_refused(advected):
    from surrogate.data import WindowDataset

    with pytest.raises(ValueError, match="unknown symmetries"):
        WindowDataset(advected, "train", augment=["rotate"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("name: a\nname: b\n", "key 'name' is given twice"),
        ("- just\n- a list\n", "expected a mapping, got list"),
        ("name: a\nre_tau: 180\ngrid: {}\ndt_snapshot: 0.2\nvariables: [u]\nnormalization: n.nc\n"
         "trajectories: [{snapshots: 3}]\nsplits: {train: []}\n", r"malformed entry \(KeyError: 'file'\)"),
    ],
)
def test_a_malformed_manifest_gets_one_clear_message(tmp_path, text, message):
    (tmp_path / "manifest.yaml").write_text(text)
    with pytest.raises(ManifestError, match=r"manifest.yaml: .*" + message):
        read_manifest(tmp_path)
