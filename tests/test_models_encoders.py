"""Field encoders and the encoder-processor-decoder surrogate: shapes on odd grids, gradients,
periodic shifts, the walls, timm backbones (local weights only), checkpoints, errors, training."""

from __future__ import annotations

import importlib.util
import math
import socket
import sys

import pytest
import torch

from surrogate.models import build_model, count_parameters, load_model, model_presets, save_model
from surrogate.models.encoders import (
    EncoderProcessorDecoder,
    MetaFormerEncoder,
    PatchDecoder,
    PatchEmbed3d,
    WindowEncoder,
    build_encoder,
)
from surrogate.models.encoders import model as model_module
from surrogate.models.encoders.geometry import pad_field, token_centres
from surrogate.models.encoders.metaformer import PoolingMixer, SpectralMixer
from surrogate.models.encoders.timm_adapter import import_timm
from surrogate.models.encoders.window import WindowBlock, window_merge, window_partition

ODD_GRIDS = [(16, 17, 16), (12, 33, 10)]
SMALL = dict(dim=16, heads=2, mlp_ratio=2.0, encoder_depth=2, processor_depth=2, decoder_hidden=8)
KINDS = {
    "vit": dict(patch=(4, 3, 4)),
    "window": dict(patch=(2, 3, 2), encoder_options={"window": (2, 2, 2)}),
    "metaformer_pooling": dict(patch=(2, 3, 2)),
    "metaformer_spectral": dict(patch=(2, 3, 2), encoder_options={"modes": (3, 2)}),
}
TIMM_VIT = {"img_size": [16, 12], "patch_size": 4, "depth": 1, "embed_dim": 16, "num_heads": 2, "dynamic_img_size": True}
TIMM = {
    # timm zero-initialises the last norm of each residual block (the block starts as the identity,
    # its first convolution gets no gradient at step 0): off here, so every weight gets one at once
    "resnet18": dict(encoder_options={"model": "resnet18", "model_kwargs": {"zero_init_last": False}, "feature_level": 1,
                                      "halo": 1}, encoder_depth=1),
    "vit": dict(encoder_options={"model": "vit_tiny_patch16_224", "model_kwargs": TIMM_VIT, "feature_level": -1, "halo": 0},
                encoder_depth=1),
}


def _coords(nx: int, ny: int, nz: int) -> dict[str, torch.Tensor]:
    """Cell centres of a 2 pi x 2 x pi channel with a tanh-stretched y grid, in h."""
    edges = 1 - torch.tanh(2.0 * (1 - torch.linspace(0, 2, ny + 1))) / math.tanh(2.0)
    return {
        "x": (torch.arange(nx) + 0.5) * 2 * math.pi / nx,
        "y": 0.5 * (edges[1:] + edges[:-1]),
        "z": (torch.arange(nz) + 0.5) * math.pi / nz,
    }


def _input(batch: int, n_history: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n_history, 3, *shape, generator=torch.Generator().manual_seed(seed))


def _model(kind: str, **overrides) -> EncoderProcessorDecoder:
    torch.manual_seed(0)
    if kind.startswith("timm_"):
        return EncoderProcessorDecoder(encoder="timm", **{**SMALL, **TIMM[kind.removeprefix("timm_")], **overrides})
    return EncoderProcessorDecoder(encoder=kind, **{**SMALL, **KINDS[kind], **overrides})


needs_timm = pytest.mark.skipif(importlib.util.find_spec("timm") is None,
                                reason="timm is not installed (pip install -e .[timm])")
ALL_KINDS = list(KINDS) + [pytest.param(f"timm_{name}", marks=needs_timm) for name in TIMM]


# ----------------------------------------------------------------- geometry and the patch embedding
def test_padding_is_circular_in_x_and_z_and_repeats_the_walls_in_y():
    field = torch.arange(3 * 4 * 2, dtype=torch.float32).view(1, 1, 3, 4, 2)
    padded = pad_field(field, ((1, 2), (1, 1), (0, 3)))
    assert padded.shape == (1, 1, 6, 6, 5)
    assert torch.equal(padded[0, 0, 0, 1:5, :2], field[0, 0, 2])  # x: the last plane before the first
    assert torch.equal(padded[0, 0, 4:, 1:5, :2], field[0, 0, :2])  # x: the first planes after the last
    assert torch.equal(padded[0, 0, 1:4, 1:5, 2:], field[0, 0, :, :, [0, 1, 0]])  # z: wraps more than once
    assert torch.equal(padded[0, 0, 1:4, 0], padded[0, 0, 1:4, 1])  # y: the wall cells repeated
    assert torch.equal(padded[0, 0, 1:4, 5], padded[0, 0, 1:4, 4])


@pytest.mark.parametrize("shape", ODD_GRIDS)
def test_patch_embedding_pads_odd_grids_and_places_tokens_at_patch_centres(shape):
    coords = _coords(*shape)
    embed = PatchEmbed3d(3, 8, (4, 3, 4))
    tokens = embed(torch.randn(2, 3, *shape), coords)
    expected = tuple(math.ceil(n / p) for n, p in zip(shape, (4, 3, 4)))
    assert tokens.grid_shape == expected and tokens.tokens.shape == (2, math.prod(expected), 8)
    assert tokens.positions.shape == (math.prod(expected), 3) and tokens.field_shape == shape
    for (low, high), n, p in zip(tokens.padding, shape, (4, 3, 4)):
        assert low + high == -n % p
    assert tokens.padding[0][0] == tokens.padding[2][0] == 0  # x, z: padding after the last cell only
    cx, cy, cz = token_centres(coords, (4, 3, 4), tokens.padding)
    if shape[1] % 3 == 0:  # y a multiple of the patch: token centres are the patch means
        torch.testing.assert_close(cy, coords["y"].view(-1, 3).mean(1))
    torch.testing.assert_close(tokens.position_grid()[:, 0, 0, 0], cx)
    assert tokens.periods[0] == pytest.approx(2 * math.pi) and tokens.periods[1] == pytest.approx(math.pi)


@pytest.mark.parametrize("shape", ODD_GRIDS)
def test_decoder_unpatching_puts_each_token_back_on_its_own_cells(shape):
    patch = (4, 3, 4)
    tokens = PatchEmbed3d(1, 1, patch)(torch.zeros(1, 1, *shape), _coords(*shape))
    index = torch.arange(tokens.tokens.shape[1], dtype=torch.float32)
    decoder = PatchDecoder(1, 1, patch, hidden=1)
    with torch.no_grad():
        decoder.unpatch.weight.fill_(1.0)
        decoder.unpatch.bias.zero_()
        field = decoder.unpatchify(tokens.replace(index.view(1, -1, 1)))[0, 0]
    assert field.shape == shape
    (_, _), (y_low, _), (_, _) = tokens.padding
    tx, ty, tz = tokens.grid_shape
    i, j, k = torch.meshgrid(*(torch.arange(n) for n in shape), indexing="ij")
    expected = ((i // 4) * ty + (j + y_low) // 3) * tz + k // 4
    assert torch.equal(field, expected.float())


# -------------------------------------------------------------------------- shapes and gradients
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("shape", ODD_GRIDS)
def test_encoders_and_decoder_shapes_on_odd_grids(kind, shape):
    model = _model(kind)
    coords = _coords(*shape)
    tokens = model.encoder(torch.randn(2, 3, *shape), coords)
    patch = model.encoder.patch
    grid = tuple(math.ceil(n / p) for n, p in zip(shape, patch))
    assert tokens.grid_shape == grid and tokens.tokens.shape == (2, math.prod(grid), SMALL["dim"])
    assert model.decoder(model.processor(tokens), skip=torch.randn(2, 3, *shape)).shape == (2, 3, *shape)
    y = model(_input(2, 1, shape), coords)
    assert y.shape == (2, 3, *shape) and y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_parameter_gets_a_gradient(kind):
    shape = (12, 17, 10)
    model = _model(kind, n_history=2)
    model(_input(2, 2, shape), _coords(*shape)).square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("processor", ["transformer", "implicit", "none"])
def test_processor_kinds(processor):
    shape = (8, 9, 8)
    model = _model("vit", processor=processor, processor_depth=3)
    blocks = {"transformer": 3, "implicit": 1, "none": 0}[processor]
    assert len(model.processor.blocks) == blocks
    assert model(_input(1, 1, shape), _coords(*shape)).shape == (1, 3, *shape)


def test_implicit_processor_shares_one_block_across_iterations():
    shape = (8, 9, 8)
    short, long = _model("vit", processor_depth=2), _model("vit", processor_depth=5)
    assert count_parameters(short) == count_parameters(long)
    long.load_state_dict(short.state_dict())
    x, coords = _input(1, 1, shape), _coords(*shape)
    with torch.no_grad():
        assert not torch.allclose(short(x, coords), long(x, coords), atol=1e-6)


# ----------------------------------------------------------------- symmetries and the walls
@pytest.mark.parametrize("kind, shift", [("vit", (2, 2)), ("window", (4, 4)), ("metaformer_pooling", (2, 4)),
                                         ("metaformer_spectral", (6, 2))])
def test_equivariant_to_periodic_shifts_by_whole_patches_or_windows(kind, shift):
    """No absolute x/z position enters: shifting the field by whole tokens (whole windows for the
    windowed encoder) in x and z shifts the prediction, the walls' features untouched."""
    shape = (12, 17, 8)  # x and z multiples of the patch (2, 3, 2) and of the window (2, 2, 2) tokens
    model = _model(kind, patch=(2, 3, 2))
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.no_grad():
        y = model(x, coords)
        shifted = model(torch.roll(x, shifts=shift, dims=(3, 5)), coords)
    torch.testing.assert_close(shifted, torch.roll(y, shifts=shift, dims=(2, 4)), rtol=0, atol=2e-5)


def test_a_shift_by_part_of_a_patch_is_not_a_symmetry():
    shape = (12, 17, 8)
    model = _model("vit", patch=(2, 3, 2))
    x, coords = _input(1, 1, shape), _coords(*shape)
    with torch.no_grad():
        y, shifted = model(x, coords), model(torch.roll(x, shifts=1, dims=3), coords)
    assert not torch.allclose(shifted, torch.roll(y, shifts=1, dims=2), atol=1e-3)


def test_window_shift_is_cyclic_in_x_and_z_and_never_wraps_across_the_walls():
    block = WindowBlock(8, 2, 2.0, window=(2, 4, 2), shift=True)
    window, roll, padding = block._layout((6, 11, 4))
    assert window == (2, 4, 2) and roll == (1, 1)
    assert padding == ((0, 0), (2, 3), (0, 0))  # y: offset by half a window, masked tokens below the wall
    clipped, roll, _ = WindowBlock(8, 2, 2.0, window=(8, 4, 8), shift=True)._layout((6, 11, 4))
    assert clipped == (6, 4, 4) and roll == (0, 0)  # a window of the whole axis is not shifted along it
    # Two blocks (plain, shifted) with windows of two tokens in y: the bottom rows cannot reach the top rows.
    torch.manual_seed(0)
    encoder = WindowEncoder(3, 8, (2, 3, 2), depth=2, heads=2, mlp_ratio=2.0, window=(2, 2, 2))
    shape = (8, 33, 8)
    field, coords = torch.randn(1, 3, *shape), _coords(*shape)
    perturbed = field.clone()
    perturbed[:, :, :, :3] += 1.0  # the first token row at the bottom wall
    with torch.no_grad():
        a, b = encoder(field, coords).grid(), encoder(perturbed, coords).grid()
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
    torch.testing.assert_close(a[:, :, -3:], b[:, :, -3:], rtol=0, atol=0)


def test_pooling_mixer_averages_only_inside_the_walls():
    mixer = PoolingMixer(3)
    constant = torch.full((1, 4, 5, 3, 2), 2.5)
    torch.testing.assert_close(mixer(constant), torch.zeros_like(constant))  # no phantom zeros beyond the walls
    ramp = torch.arange(5, dtype=torch.float32).view(1, 1, 5, 1, 1).expand(1, 4, 5, 3, 1)
    out = mixer(ramp)[0, 0, :, 0, 0]
    torch.testing.assert_close(out, torch.tensor([0.5, 0.0, 0.0, 0.0, -0.5]))  # wall rows average two rows


def test_spectral_mixer_has_no_fft_across_y():
    torch.manual_seed(0)
    mixer = SpectralMixer(4, modes=(3, 2), y_kernel=3)
    x = torch.randn(1, 6, 9, 4, 4)
    perturbed = x.clone()
    perturbed[:, :, 0] += 1.0
    with torch.no_grad():
        a, b = mixer(x), mixer(perturbed)
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])
    torch.testing.assert_close(a[:, :, 2:], b[:, :, 2:], rtol=0, atol=1e-6)  # only the y neighbour sees it
    for tx, tz in ((1, 1), (5, 3), (16, 8)):  # modes clipped to any token grid
        assert mixer(torch.randn(2, tx, 3, tz, 4)).shape == (2, tx, 3, tz, 4)


def test_window_partition_round_trip():
    x = torch.randn(2, 4, 6, 4, 3)
    windows = window_partition(x, (2, 3, 2))
    assert windows.shape == (2 * 2 * 2 * 2, 12, 3)
    assert torch.equal(window_merge(windows, (2, 3, 2), (2, 4, 6, 4)), x)


# ----------------------------------------------------------------------------- timm backbones
@needs_timm
@pytest.mark.parametrize("name", list(TIMM))
@pytest.mark.parametrize("shape", [(16, 17, 12), (12, 9, 10)])
def test_timm_backbones_encode_wall_parallel_planes(name, shape):
    model = _model(f"timm_{name}", n_history=2)
    assert model.encoder.patch == (4, 1, 4)
    coords = _coords(*shape)
    tokens = model.encoder(_input(2, 2, shape).flatten(1, 2), coords)
    grid = (math.ceil(shape[0] / 4), shape[1], math.ceil(shape[2] / 4))
    assert tokens.grid_shape == grid and tokens.tokens.shape == (2, math.prod(grid), SMALL["dim"])
    torch.testing.assert_close(tokens.position_grid()[0, :, 0, 1], coords["y"])
    y = model(_input(2, 2, shape), coords)
    assert y.shape == (2, 3, *shape) and torch.isfinite(y).all()
    y.square().mean().backward()


def _no_network(monkeypatch):
    """Make every download path fail loudly."""
    import_timm()
    import huggingface_hub
    import timm.models._builder

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(timm.models._builder, "load_pretrained", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@needs_timm
def test_timm_presets_build_without_the_network(monkeypatch):
    _no_network(monkeypatch)
    shape = (16, 33, 12)
    for preset in ("timm_resnet_cpu", "timm_vit_cpu", "timm_convnext_cpu"):
        model = build_model("encoder_processor_decoder", preset)
        with torch.no_grad():
            assert model(_input(1, 1, shape), _coords(*shape)).shape == (1, 3, *shape)


@needs_timm
def test_local_pretrained_weights_are_loaded_and_the_input_conv_adapted(tmp_path, monkeypatch):
    timm = import_timm()
    _no_network(monkeypatch)
    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False, in_chans=3)
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    with pytest.warns(UserWarning, match="not used by the encoder"):  # layers after the first stage, fc
        model = _model("timm_resnet18", pretrained_path=str(tmp_path / "resnet18.pth"))
    backbone, report = model.encoder.backbone, model.encoder.pretrained_report
    assert torch.equal(backbone.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert torch.equal(backbone.bn1.running_mean, source.bn1.running_mean)
    assert torch.equal(backbone.conv1.weight, source.conv1.weight) and not report.adapted
    assert {"layer4.1.conv2.weight", "fc.weight"} <= set(report.unused) and not report.missing
    assert set(report.loaded) == set(backbone.state_dict())
    # Two snapshots of history: 6 input channels from 3-channel weights, repeated and scaled by 3/6.
    with pytest.warns(UserWarning):
        model = _model("timm_resnet18", n_history=2, pretrained_path=str(tmp_path / "resnet18.pth"))
    assert model.encoder.pretrained_report.adapted == ["conv1.weight"]
    expected = torch.cat([source.conv1.weight, source.conv1.weight], dim=1) * 0.5
    torch.testing.assert_close(model.encoder.backbone.conv1.weight, expected)
    # The checkpoint holds the weights: it loads without the pretrained file.
    path = save_model(model, tmp_path / "model.pt")
    (tmp_path / "resnet18.pth").unlink()
    loaded, _ = load_model(path)
    assert loaded.hparams["pretrained_path"] is None
    shape = (8, 9, 8)
    x, coords = _input(1, 2, shape), _coords(*shape)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x, coords), model.eval()(x, coords))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        _model("timm_resnet18", pretrained_path=str(tmp_path / "resnet18.pth"))


# ---------------------------------------------------------------------- checkpoints and precision
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_checkpoint_round_trip_is_bit_identical(kind, tmp_path):
    shape = (8, 9, 8)
    model = _model(kind, n_history=2).eval()
    path = save_model(model, tmp_path / "model.pt", extra={"epoch": 2})
    loaded, checkpoint = load_model(path)
    assert type(loaded) is EncoderProcessorDecoder and checkpoint["epoch"] == 2
    assert loaded.hparams == model.hparams
    x, coords = _input(2, 2, shape), _coords(*shape)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x, coords), model(x, coords))


@pytest.mark.parametrize("kind", list(KINDS) + [pytest.param("timm_resnet18", marks=needs_timm)])
def test_bfloat16_autocast_forward_is_finite_and_close(kind):
    shape = (8, 9, 8)
    model = _model(kind).eval()
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.no_grad():
        reference = model(x, coords)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x, coords)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    increment = (reference - x[:, -1]).abs().max()
    assert (y - reference).abs().max() < 0.1 * increment + 0.02


# ------------------------------------------------------------------------------- errors
def test_bad_input_and_arguments_raise_clear_errors():
    shape = (8, 9, 8)
    model = _model("vit")
    with pytest.raises(ValueError, match="n_var=3"):
        model(torch.zeros(1, 1, 2, *shape), _coords(*shape))
    with pytest.raises(ValueError, match=r"ViTEncoder expects a field of shape \(batch, 3, nx, ny, nz\)"):
        model.encoder(torch.zeros(1, 4, *shape), _coords(*shape))
    with pytest.raises(ValueError, match="unknown encoder 'swin'; choose one of metaformer_pooling, metaformer_spectral, timm, vit, window"):
        EncoderProcessorDecoder(encoder="swin")
    with pytest.raises(TypeError, match="encoder 'window' takes no option.*window"):
        EncoderProcessorDecoder(encoder="window", encoder_options={"windw": (2, 2, 2)})
    with pytest.raises(ValueError, match="pretrained_path applies to the 'timm' encoder only"):
        EncoderProcessorDecoder(encoder="vit", pretrained_path="weights.pth")
    with pytest.raises(ValueError, match="unknown processor"):
        EncoderProcessorDecoder(processor="loop")
    with pytest.raises(ValueError, match="patch must be three positive integers"):
        EncoderProcessorDecoder(patch=(2, 2))
    with pytest.raises(ValueError, match="unknown MetaFormer mixer"):
        MetaFormerEncoder(3, 8, (2, 2, 2), 1, 2.0, mixer="attention")
    with pytest.raises(ValueError, match="multiple of heads"):
        EncoderProcessorDecoder(dim=10, heads=4)


def test_missing_timm_is_named_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'timm>=1.0.3'"):
        EncoderProcessorDecoder(encoder="timm", encoder_options={"model": "resnet18"})


@needs_timm
def test_unknown_timm_architecture_is_named():
    with pytest.raises(ValueError, match=r"has no architecture 'resnet19'.*close names: .*resnet18"):
        build_encoder("timm", 3, 8, (4, 1, 4), 1, 2, 2.0, {"model": "resnet19"})
    with pytest.raises(ValueError, match="feature_level 9 out of range for 'resnet18'"):
        build_encoder("timm", 3, 8, (4, 1, 4), 1, 2, 2.0, {"model": "resnet18", "feature_level": 9})


# ---------------------------------------------------------------------- registry and presets
def test_presets_are_registered_with_their_documented_parameter_counts():
    presets = model_presets("encoder_processor_decoder")
    assert {"cpu", "paper", "vit_cpu", "window_cpu", "pooling_cpu", "spectral_cpu"} <= set(presets)
    documented = {"cpu": 69_667, "paper": 1_138_051}
    for preset, count in documented.items():
        assert count_parameters(build_model("encoder_processor_decoder", preset)) == count
        assert f"{count:,}" in model_module.__doc__
    for preset in ("vit_cpu", "pooling_cpu", "spectral_cpu"):
        assert 50_000 <= count_parameters(build_model("encoder_processor_decoder", preset)) <= 150_000, preset
    assert abs(documented["paper"] / 1_163_187 - 1) < 0.05  # IFactFormer-m's size


def test_the_cpu_preset_overfits_one_sample():
    torch.manual_seed(0)
    shape = (8, 9, 8)
    model = build_model("encoder_processor_decoder", "cpu")
    x, coords = _input(1, 1, shape), _coords(*shape)
    target = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = (model(x, coords) - target).norm() / target.norm()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", list(KINDS))
def test_cuda_matches_cpu(kind):
    shape = (12, 17, 10)
    model = _model(kind).eval()
    x, coords = _input(2, 1, shape), _coords(*shape)
    with torch.no_grad():
        expected = model(x, coords)
        gpu = model.cuda()(x.cuda(), coords)  # coordinates on the CPU are moved
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert torch.isfinite(model(x.cuda(), coords)).all()
    torch.testing.assert_close(gpu.cpu(), expected, rtol=1e-4, atol=1e-4)
