"""Tests of IFactFormer-m / IFactFormer-o (surrogate.models.ifactformer)."""

from __future__ import annotations

import pytest
import torch

from surrogate.models.ifactformer import (
    FactorizedAttentionBlock,
    IFactFormerM,
    IFactFormerO,
    _apply_axis_kernels,
    _AxisKernel,
    _ChannelStatistics,
    _rotary_angles,
)
from surrogate.models.registry import count_parameters

SMALL = dict(dim=12, heads=2, dim_head=4, kernel_multiplier=3, n_layer=2)
MODELS = [IFactFormerM, IFactFormerO]


def grid(nx: int = 7, ny: int = 9, nz: int = 5) -> dict[str, torch.Tensor]:
    """Cell centres of a 4pi x 2 x 4pi/3 channel, tanh-stretched in y, in h."""
    eta = torch.linspace(-1.0, 1.0, ny + 1)
    y_faces = 1.0 + torch.tanh(1.5 * eta) / torch.tanh(torch.tensor(1.5))
    return {
        "x": (torch.arange(nx) + 0.5) * (4 * torch.pi / nx),
        "y": 0.5 * (y_faces[1:] + y_faces[:-1]),
        "z": (torch.arange(nz) + 0.5) * (4 * torch.pi / 3 / nz),
    }


def sample(batch: int = 2, n_history: int = 1, shape: tuple[int, int, int] = (7, 9, 5), seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_history, 3, *shape, generator=torch.Generator().manual_seed(seed))


def energised(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the q, k maps up 10x: the kernels start so small (gain 0.02) that the block's update
    is ~1e-3 of the field, too small for tests that compare outputs of different loops."""
    with torch.no_grad():
        for kernel in model.block.kernels:
            kernel.to_q.weight.mul_(10.0)
            kernel.to_k.weight.mul_(10.0)
    return model


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(1234)


@pytest.mark.parametrize("cls", MODELS)
def test_output_shape_odd_grid_and_history(cls: type) -> None:
    model = cls(n_history=2, **SMALL)
    y = model(sample(n_history=2), grid())
    assert y.shape == (2, 3, 7, 9, 5)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("cls", MODELS)
def test_every_parameter_gets_a_gradient(cls: type) -> None:
    model = cls(n_history=2, **SMALL)
    y = model(sample(n_history=2), grid())
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name


def test_weights_are_shared_across_the_loop() -> None:
    one, five = IFactFormerM(**{**SMALL, "n_layer": 1}), IFactFormerM(**{**SMALL, "n_layer": 5})
    assert count_parameters(one) == count_parameters(five)
    five.load_state_dict(energised(one).state_dict())
    x, coords = sample(), grid()
    with torch.no_grad():
        assert (one(x, coords) - five(x, coords)).abs().max() > 1e-3


def test_parallel_and_chained_differ_with_the_same_weights() -> None:
    m, o = energised(IFactFormerM(**SMALL)), IFactFormerO(**SMALL)
    shared = {k: v for k, v in m.state_dict().items() if k != "block.out_hidden.weight"}
    missing, unexpected = o.load_state_dict(shared, strict=False)
    assert missing == ["block.out_hidden.weight"] and not unexpected
    # -o's output layer sees one kernel result; give it the sum of -m's three weight slices
    o.block.out_hidden.weight.data.copy_(sum(m.block.out_hidden.weight.detach().chunk(3, dim=1)))
    x, coords = sample(), grid()
    with torch.no_grad():
        assert (m(x, coords) - o(x, coords)).abs().max() > 1e-3


def along(kernel: torch.Tensor, v: torch.Tensor, axis: int) -> torch.Tensor:
    """Reference: each (sample, head) kernel ``(n, n)`` contracted with ``v`` ``(batch, heads, nx,
    ny, nz, c)`` on grid ``axis`` (0, 1, 2)."""
    out = torch.empty_like(v)
    for b in range(v.shape[0]):
        for h in range(v.shape[1]):
            out[b, h] = torch.tensordot(kernel[b, h], v[b, h], dims=([1], [axis])).movedim(0, axis)
    return out


def test_axis_kernels_act_along_their_own_axis() -> None:
    g = torch.Generator().manual_seed(0)
    b, h, c, shape = 2, 3, 4, (4, 5, 6)
    v = torch.randn(b, h, *shape, c, generator=g)
    kx, ky, kz = (torch.randn(b, h, n, n, generator=g) for n in shape)
    parallel = _apply_axis_kernels(v, (kx, ky, kz), "parallel")
    assert len(parallel) == 3
    for axis, k in enumerate((kx, ky, kz)):
        torch.testing.assert_close(parallel[axis], along(k, v, axis))
    (chained,) = _apply_axis_kernels(v, (kx, ky, kz), "chained")
    torch.testing.assert_close(chained, along(kz, along(ky, along(kx, v, 0), 1), 2))


_EINSUM = ("bhij,bjyzhc->biyzhc", "bhij,bxjzhc->bxizhc", "bhij,bxyjhc->bxyihc")


def plain_block(block: FactorizedAttentionBlock, u: torch.Tensor, rotary) -> torch.Tensor:
    """The block as the module docstring writes it, one step after another: values channels last,
    kernels by einsum, the parts concatenated, torch's instance norm, the two output layers."""
    batch, nx, ny, nz, dim = u.shape
    h = block.norm(u)
    v = block.to_v(h).view(batch, nx, ny, nz, block.heads, block.dim_head)
    kernels = []
    for axis, (reducer, kernel) in enumerate(zip(block.reducers, block.kernels)):
        others = tuple(1 + a for a in range(3) if a != axis)
        kernels.append(kernel(reducer(block.to_latent(h).mean(dim=others)), rotary[axis]))
    if block.mode == "parallel":
        parts = [torch.einsum(eq, k, v) for eq, k in zip(_EINSUM, kernels)]
    else:
        for eq, k in zip(_EINSUM, kernels):
            v = torch.einsum(eq, k, v)
        parts = [v]
    z = torch.cat([p.flatten(-2) for p in parts], dim=-1)
    z = torch.nn.functional.instance_norm(z.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
    return block.out(torch.nn.functional.gelu(block.out_hidden(z)))


@pytest.mark.parametrize("mode", ["parallel", "chained"])
def test_the_block_matches_its_plain_composition_with_gradients(mode: str) -> None:
    """The fused block (heads-first values, the norm folded into the output weights) gives the
    plain composition's output and gradients to float32 round-off."""
    torch.manual_seed(1)
    block = FactorizedAttentionBlock(dim=16, heads=3, dim_head=8, kernel_multiplier=2, mode=mode)
    for parameter in block.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    coords = grid(6, 7, 5)
    rotary = [_rotary_angles(coords[a], block.rank) for a in "xyz"]
    u = torch.randn(2, 6, 7, 5, 16, requires_grad=True)
    outputs, gradients = [], []
    for forward in (block, lambda u, r: plain_block(block, u, r)):
        out = forward(u, rotary)
        weights = torch.randn_like(out, generator=torch.Generator().manual_seed(2))
        grads = torch.autograd.grad((out * weights).sum(), [u, *block.parameters()])
        outputs.append(out)
        gradients.append(grads)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for fused, plain in zip(*gradients):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5 * float(plain.abs().max()))


def test_rotary_kernel_depends_on_coordinate_differences_only() -> None:
    kernel = _AxisKernel(latent=8, heads=2, rank=12, scaling=1.0)
    latent = torch.randn(1, 9, 8)
    y = grid()["y"]
    k0 = kernel(latent, _rotary_angles(y, 12))
    k1 = kernel(latent, _rotary_angles(y + 0.37, 12))
    assert k0.shape == (1, 2, 9, 9)
    torch.testing.assert_close(k0, k1, rtol=0.0, atol=1e-3 * k0.abs().max().item())
    assert not torch.allclose(k0, kernel(latent, _rotary_angles(torch.linspace(0, 2, 9), 12)))


def test_channel_statistics_match_torch_and_gradcheck(monkeypatch) -> None:
    import surrogate.models.ifactformer as ifactformer

    monkeypatch.setattr(ifactformer, "_STATISTICS_BLOCK", 2 * 3 * 5 * 1000)  # blocks of 1000 points
    z = torch.randn(2, 3, 2500, 5, dtype=torch.float64) * 2.0 + 0.7  # three blocks of points, one partial
    mean, rstd = _ChannelStatistics.apply(z)
    variance, expected_mean = torch.var_mean(z, dim=2, keepdim=True, correction=0)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(rstd, torch.rsqrt(variance + 1e-5))
    small = torch.randn(2, 2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_ChannelStatistics.apply, (small,))
    model = IFactFormerO(**SMALL).double()
    assert model(sample().double(), grid()).dtype == torch.float64


def test_the_grid_coordinates_are_used() -> None:
    model = IFactFormerM(**SMALL)
    x, coords = sample(), grid()
    uniform = {**coords, "y": torch.linspace(0.1, 1.9, 9)}
    with torch.no_grad():
        assert not torch.allclose(model(x, coords), model(x, uniform), atol=1e-6)


def test_samples_of_a_batch_are_independent() -> None:
    model = IFactFormerO(**SMALL)
    x, coords = sample(batch=3), grid()
    with torch.no_grad():
        torch.testing.assert_close(model(x, coords)[1:2], model(x[1:2], coords), rtol=1e-4, atol=1e-5)


def test_paper_configuration_has_the_published_parameter_count() -> None:
    m, o = IFactFormerM(), IFactFormerO()
    # the published 1,163,331 counts its 144-entry frozen Fourier projection (a buffer here)
    assert abs(count_parameters(m) - 1_163_331) <= 0.02 * 1_163_331
    assert count_parameters(m) == 1_163_331 - 3 * 48
    assert m.fourier_projection.shape == (3, 48)
    assert count_parameters(o) == count_parameters(m) - 2 * 5 * 96 * 96


def test_the_fourier_projection_is_reproducible_from_the_seed() -> None:
    a, b, c = IFactFormerM(**SMALL), IFactFormerM(**SMALL), IFactFormerM(**SMALL, seed=1)
    assert torch.equal(a.fourier_projection, b.fourier_projection)
    assert not torch.equal(a.fourier_projection, c.fourier_projection)
    assert "fourier_projection" in a.state_dict()
    assert a.fourier_projection.std() == pytest.approx(8.0, rel=0.5)


def test_registry_builds_the_presets() -> None:
    from surrogate.models import available_models, build_model, model_presets

    assert {"ifactformer_m", "ifactformer_o"} <= set(available_models())
    model = build_model("ifactformer_m", preset="cpu")
    assert isinstance(model, IFactFormerM)
    assert model.hparams == {**IFactFormerM(**SMALL).hparams, **model_presets("ifactformer_m")["cpu"]}
    assert model(sample(batch=1), grid()).shape == (1, 3, 7, 9, 5)
    assert build_model("ifactformer_o", preset="paper").hparams == IFactFormerO().hparams


@pytest.mark.parametrize("cls", MODELS)
def test_save_load_round_trip_is_bit_identical(cls: type, tmp_path) -> None:
    from surrogate.models import load_model, save_model

    model = cls(n_history=2, **{**SMALL, "seed": 7})
    path = save_model(model, tmp_path / "model.pt")
    loaded, checkpoint = load_model(path)
    assert type(loaded) is cls and checkpoint["hparams"] == model.hparams
    x, coords = sample(n_history=2), grid()
    with torch.no_grad():
        assert torch.equal(model(x, coords), loaded(x, coords))


def test_bad_inputs_raise_clear_errors() -> None:
    model = IFactFormerM(**SMALL)
    coords = grid()
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 1, 3, nx, ny, nz\)"):
        model(torch.randn(2, 1, 4, 7, 9, 5), coords)
    with pytest.raises(ValueError, match="expected input of shape"):
        model(torch.randn(2, 3, 7, 9, 5), coords)
    with pytest.raises(ValueError, match=r"coords\['y'\] has shape"):
        model(sample(), {**coords, "y": torch.linspace(0, 2, 8)})
    with pytest.raises(ValueError, match="multiple of 2 \\* n_var"):
        IFactFormerM(dim=32)
    with pytest.raises(ValueError, match="even"):
        IFactFormerM(dim=12, dim_head=3, kernel_multiplier=3)


@pytest.mark.parametrize("cls", MODELS)
def test_bf16_autocast_forward_is_finite_and_close(cls: type) -> None:
    model = energised(cls(**SMALL))
    x, coords = sample(), grid()
    with torch.no_grad():
        reference = model(x, coords)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x, coords)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    assert (y.float() - reference).norm() < 0.03 * reference.norm()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", MODELS)
def test_cuda_matches_cpu(cls: type) -> None:
    model = cls(**SMALL)
    x, coords = sample(), grid()
    with torch.no_grad():
        reference = model(x, coords)
        y = model.cuda()(x.cuda(), coords)  # coordinates may stay on the CPU
    torch.testing.assert_close(y.cpu(), reference, rtol=1e-3, atol=1e-4)
