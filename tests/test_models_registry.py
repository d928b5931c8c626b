"""The model registry: names, presets, argument errors, and the common contract of every model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogate.grid import ChannelGrid
from surrogate.models import SurrogateModel, available_models, build_model, count_parameters, load_model, model_presets, save_model

GRID = ChannelGrid(6, 7, 5, lx=2.0, lz=1.0, stretching=1.5)
COORDS = {axis: torch.as_tensor(getattr(GRID, axis), dtype=torch.float32) for axis in "xyz"}


def test_the_four_surrogates_are_registered_with_paper_and_cpu_presets():
    assert {"ifactformer_m", "ifactformer_o", "fno", "ifno"} <= set(available_models())
    for name in ("ifactformer_m", "ifactformer_o", "fno", "ifno"):
        assert {"paper", "cpu"} <= set(model_presets(name))


def test_unknown_names_presets_and_arguments_are_named():
    with pytest.raises(ValueError, match="unknown model 'fnx'; available: .*fno"):
        build_model("fnx")
    with pytest.raises(ValueError, match="has no preset 'huge'; presets: paper, cpu"):
        build_model("fno", preset="huge")
    with pytest.raises(TypeError, match="takes no argument\\(s\\) depth"):
        build_model("fno", depth=3)


def test_a_model_registers_in_its_class_statement_and_a_taken_name_is_refused(tmp_path):
    class Doubling(SurrogateModel, name="test_doubling", presets={"small": {"gain": 2.0}}):
        def __init__(self, n_var: int = 3, n_history: int = 1, gain: float = 1.0) -> None:
            super().__init__()
            self.gain = torch.nn.Parameter(torch.tensor(gain))

        def forward(self, x, coords):
            return self.gain * x[:, -1]

    assert "test_doubling" in available_models() and model_presets("test_doubling") == {"small": {"gain": 2.0}}
    model = build_model("test_doubling", preset="small")
    assert isinstance(model, Doubling) and model.hparams == {"n_var": 3, "n_history": 1, "gain": 2.0}
    save_model(model, tmp_path / "doubling.pt")
    assert float(load_model(tmp_path / "doubling.pt")[0].gain) == 2.0
    with pytest.raises(ValueError, match="a model is already registered as 'fno': FNO"):
        class Other(SurrogateModel, name="fno"):
            pass


@pytest.mark.parametrize("name", ["ifactformer_m", "ifactformer_o", "fno", "ifno"])
def test_every_model_keeps_the_contract(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, preset="cpu", n_history=2)
    assert model.hparams["n_history"] == 2 and model.registry_name == name
    x = torch.randn(2, 2, 3, *GRID.shape)
    y = model(x, COORDS)
    assert y.shape == (2, 3) + GRID.shape and torch.isfinite(y).all()
    assert count_parameters(model) < count_parameters(build_model(name, preset="paper"))
    save_model(model, tmp_path / "model.pt")
    again, _ = load_model(tmp_path / "model.pt")
    np.testing.assert_array_equal(again(x, COORDS).detach().numpy(), y.detach().numpy())
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 2, 3, nx, ny, nz\)"):
        model(x[:, :1], COORDS)
