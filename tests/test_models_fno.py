"""FNO and IFNO: shapes, gradients, shift equivariance, the y padding, checkpoints, precision."""

from __future__ import annotations

import math

import pytest
import torch

from surrogate.models import fno as fno_module
from surrogate.models.fno import FNO, IFNO, SpectralConv3d
from surrogate.models.registry import count_parameters, load_model, model_presets, save_model

SMALL = {"width": 6, "modes": (3, 3, 2), "n_layers": 2, "projection_width": 8}


def _coords(nx: int, ny: int, nz: int) -> dict[str, torch.Tensor]:
    """Cell centres of a 4 pi x 2 x 4/3 pi channel with a tanh-stretched y grid, in h."""
    lx, lz = 4 * math.pi, 4 * math.pi / 3
    edges = 1 - torch.tanh(1.5 * (1 - torch.linspace(0, 2, ny + 1))) / math.tanh(1.5)
    return {
        "x": (torch.arange(nx) + 0.5) * lx / nx,
        "y": 0.5 * (edges[1:] + edges[:-1]),
        "z": (torch.arange(nz) + 0.5) * lz / nz,
    }


def _input(batch: int, n_history: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_history, 3, *shape, generator=torch.Generator().manual_seed(seed))


def _reference_spectral(conv: SpectralConv3d, v: torch.Tensor) -> torch.Tensor:
    """The spectral convolution by its definition: pad y, rfftn, weight the retained corner modes, irfftn, crop."""
    _, _, nx, ny, nz = v.shape
    pad = conv.padding(ny)
    nyp = ny + pad
    spectrum = torch.fft.rfftn(torch.nn.functional.pad(v, (0, 0, 0, pad)), dim=(-3, -2, -1))
    weight = conv.weight.detach()
    weight = torch.complex(weight[..., 0, :], weight[..., 1, :])  # (2 mx, 2 my, mz, in, out)
    mx, my, mz = conv.modes
    out = torch.zeros(v.shape[0], conv.out_channels, nx, nyp, nz // 2 + 1, dtype=spectrum.dtype)
    for kx in range(-mx, mx):
        for ky in range(-my, my):
            # Wavenumbers the grid holds: 0 .. ceil(n/2)-1 and -floor(n/2) .. -1.
            if not (-(nx // 2) <= kx < (nx + 1) // 2 and -(nyp // 2) <= ky < (nyp + 1) // 2):
                continue
            for kz in range(min(mz, nz // 2 + 1)):
                w = weight[kx % (2 * mx), ky % (2 * my), kz]
                out[:, :, kx % nx, ky % nyp, kz] = spectrum[:, :, kx % nx, ky % nyp, kz] @ w
    return torch.fft.irfftn(out, s=(nx, nyp, nz), dim=(-3, -2, -1))[:, :, :, :ny]


@pytest.mark.parametrize("shape", [(7, 9, 5), (8, 6, 4), (1, 5, 1)])
def test_spectral_conv_matches_its_definition(shape):
    torch.manual_seed(1)
    conv = SpectralConv3d(2, 3, modes=(3, 4, 2), y_padding=0.4)
    v = torch.randn(2, 2, *shape)
    torch.testing.assert_close(conv(v), _reference_spectral(conv, v), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [FNO, IFNO])
@pytest.mark.parametrize("shape", [(7, 9, 5), (4, 3, 2)])
def test_shapes_on_odd_and_small_grids(cls, shape):
    model = cls(n_history=2, width=6, modes=(8, 8, 4), n_layers=2)  # more modes than the grid holds
    y = model(_input(3, 2, shape), _coords(*shape))
    assert y.shape == (3, 3, *shape)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("cls", [FNO, IFNO])
def test_every_parameter_gets_a_gradient(cls):
    torch.manual_seed(0)
    shape = (8, 9, 6)
    model = cls(n_history=2, coordinate_features=("x", "y", "z"), **SMALL)
    model(_input(2, 2, shape), _coords(*shape)).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_ifno_shares_its_layer_across_iterations():
    shape = (6, 7, 4)
    x, coords = _input(1, 1, shape), _coords(*shape)
    torch.manual_seed(0)
    short = IFNO(**{**SMALL, "n_layers": 2})
    long = IFNO(**{**SMALL, "n_layers": 6})
    assert count_parameters(short) == count_parameters(long)
    long.load_state_dict(short.state_dict())
    with torch.no_grad():
        assert not torch.allclose(short(x, coords), long(x, coords), atol=1e-6)


def test_fno_layers_have_their_own_weights():
    assert count_parameters(FNO(**{**SMALL, "n_layers": 3})) > count_parameters(FNO(**{**SMALL, "n_layers": 2}))


@pytest.mark.parametrize("cls", [FNO, IFNO])
def test_equivariant_to_periodic_shifts_in_x_and_z(cls):
    torch.manual_seed(0)
    shape = (8, 9, 6)
    model = cls(**SMALL)  # default coordinate_features=("y",)
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.no_grad():
        y = model(x, coords)
        shifted = model(torch.roll(x, shifts=(3, 2), dims=(3, 5)), coords)
    torch.testing.assert_close(shifted, torch.roll(y, shifts=(3, 2), dims=(2, 4)), rtol=0, atol=1e-5)


def test_shift_with_coordinate_features_needs_the_rolled_coordinates():
    torch.manual_seed(0)
    shape = (8, 9, 6)
    model = FNO(coordinate_features=("x", "y", "z"), **SMALL)
    x, coords = _input(1, 1, shape), _coords(*shape)
    rolled = {"x": torch.roll(coords["x"], 3), "y": coords["y"], "z": torch.roll(coords["z"], 2)}
    with torch.no_grad():
        y = model(x, coords)
        x_rolled = torch.roll(x, shifts=(3, 2), dims=(3, 5))
        expected = torch.roll(y, shifts=(3, 2), dims=(2, 4))
        torch.testing.assert_close(model(x_rolled, rolled), expected, rtol=0, atol=1e-5)
        assert not torch.allclose(model(x_rolled, coords), expected, atol=1e-3)  # x/z features break the symmetry


def test_y_padding_keeps_the_walls_apart():
    """A low-pass spectral convolution of a field on the bottom row: what reaches the top row."""
    ny = 17
    impulse = torch.zeros(1, 1, 1, ny, 1)
    impulse[..., 0, :] = 1.0

    def response(y_padding):
        conv = SpectralConv3d(1, 1, modes=(1, 4, 1), y_padding=y_padding)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[..., 0, :] = 1.0  # R(k) = 1 on the retained modes: a low-pass filter in y
            return conv(impulse)[0, 0, 0, :, 0]

    periodic, padded = response(0.0), response(0.25)
    assert SpectralConv3d(1, 1, (1, 4, 1), y_padding=0.25).padding(ny) == 5
    # Periodic in y: the top row is as close to the bottom row as row 1 is.
    torch.testing.assert_close(periodic[-1], periodic[1])
    assert periodic[-1] > 0.5 * periodic[0]
    # Padded: the top row sees the bottom-row field only through the kernel at lag pad + 1.
    assert padded[1] > 0.5 * padded[0]
    assert abs(padded[-1]) < 0.1 * padded[0]


def test_model_passes_y_padding_to_every_layer():
    model = FNO(y_padding=0.5, **SMALL)
    assert [layer.padding(33) for layer in model.spectral] == [17, 17]
    assert IFNO(y_padding=0.0, **SMALL).spectral.padding(33) == 0


@pytest.mark.parametrize("name", ["fno", "ifno"])
def test_checkpoint_round_trip_is_bit_identical(name, tmp_path):
    torch.manual_seed(0)
    shape = (6, 7, 4)
    cls = {"fno": FNO, "ifno": IFNO}[name]
    model = cls(n_history=2, coordinate_features=("y", "z"), **SMALL)
    path = save_model(model, tmp_path / f"{name}.pt", extra={"epoch": 3})
    loaded, checkpoint = load_model(path)
    assert type(loaded) is cls and checkpoint["epoch"] == 3
    assert loaded.hparams == model.hparams
    x, coords = _input(2, 2, shape), _coords(*shape)
    with torch.no_grad():
        assert torch.equal(loaded(x, coords), model(x, coords))


@pytest.mark.parametrize(
    "x_shape, coords_shape, match",
    [
        ((1, 1, 2, 6, 7, 4), (6, 7, 4), "n_var=3"),
        ((1, 2, 3, 6, 7, 4), (6, 7, 4), "n_history=1"),
        ((1, 3, 6, 7, 4), (6, 7, 4), "expected input of shape"),
        ((1, 1, 3, 6, 7, 4), (6, 8, 4), "coords\\['y'\\]"),
    ],
)
def test_bad_input_raises_a_clear_error(x_shape, coords_shape, match):
    model = FNO(**SMALL)
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(x_shape), _coords(*coords_shape))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="modes"):
        FNO(modes=(4, 4))
    with pytest.raises(ValueError, match="coordinate_features"):
        IFNO(coordinate_features=("r",))
    with pytest.raises(ValueError, match="y_padding"):
        FNO(y_padding=-0.1)


@pytest.mark.parametrize("cls", [FNO, IFNO])
def test_bfloat16_autocast_forward_is_finite(cls):
    torch.manual_seed(0)
    shape = (8, 9, 6)
    model = cls(**SMALL)
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x, coords)
    assert y.shape == (2, 3, *shape)
    assert torch.isfinite(y.float()).all()
    with torch.no_grad():
        reference = model(x, coords)
    assert (y.float() - reference).abs().max() < 0.1 * reference.abs().max() + 0.05


def test_presets_and_their_documented_parameter_counts():
    documented = {("fno", "paper"): 1_182_383, ("fno", "cpu"): 99_019, ("ifno", "paper"): 1_183_955, ("ifno", "cpu"): 56_027}
    for (name, preset), count in documented.items():
        cls = {"fno": FNO, "ifno": IFNO}[name]
        arguments = model_presets(name)[preset]
        assert count_parameters(cls(**arguments)) == count, (name, preset)
        assert f"{count:,}" in fno_module.__doc__
        modes = arguments["modes"]
        # The study's grid 32 x 33 x 16 holds every retained mode (y padded to 42 rows).
        assert modes[0] <= 16 and modes[1] <= 21 and modes[2] <= 9


def test_build_model_through_the_registry():
    from surrogate.models import available_models, build_model

    assert {"fno", "ifno"} <= set(available_models())
    model = build_model("fno", preset="cpu")
    assert isinstance(model, FNO) and model.hparams["width"] == model_presets("fno")["cpu"]["width"]
    ifno = build_model("ifno", preset="cpu", n_layers=2)
    assert isinstance(ifno, IFNO) and ifno.n_layers == 2
    shape = (32, 33, 16)
    with torch.no_grad():
        assert model(_input(1, 1, shape), _coords(*shape)).shape == (1, 3, *shape)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", [FNO, IFNO])
def test_cuda_matches_cpu(cls):
    torch.manual_seed(0)
    shape = (8, 9, 6)
    model = cls(**SMALL)
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.no_grad():
        expected = model(x, coords)
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # TF32 convolutions round to 1e-3
            gpu = model.cuda()(x.cuda(), {k: v.cuda() for k, v in coords.items()})
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert torch.isfinite(model(x.cuda(), coords).float()).all()  # coords on the CPU are moved
    torch.testing.assert_close(gpu.cpu(), expected, rtol=1e-4, atol=1e-4)
