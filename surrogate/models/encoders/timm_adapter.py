r"""Any timm image backbone as an encoder of the wall-parallel (x-z) planes of the field.

:class:`TimmPlaneEncoder` treats each of the ``ny`` wall-parallel planes of the field as an image
of ``nx x nz`` pixels whose channels are the input channels (``u, v, w`` of each history
snapshot), and runs all ``batch * ny`` images through a 2-D backbone from timm:

1. each plane is padded circularly (x and z are periodic) up to a multiple of the backbone's
   stride ``s`` at the chosen feature level, plus ``halo * s`` cells on each side, so that the
   backbone's own zero padding at image borders falls on cells that are cropped away;
2. the backbone's feature map at ``feature_level`` (``forward_intermediates``; the layers after it
   are pruned) has one pixel per ``s x s`` cells: after cropping the halo, a token grid
   ``(tx, ny, tz)`` with patch ``(s, 1, s)``;
3. a linear map to ``dim`` channels plus the wall features of the plane's y
   (:func:`~surrogate.models.encoders.geometry.wall_features`), then ``depth`` transformer blocks
   that attend along y within each (x, z) column, so the planes, encoded independently by the
   backbone, communicate; a final LayerNorm.

The backbone is built with ``pretrained=False`` always: nothing is downloaded.
``pretrained_path`` names a local weights file (a state dict, or a checkpoint holding one under
``state_dict`` or ``model``; ``.safetensors`` too), loaded with ``strict=False`` before pruning;
the keys it lacks, the keys the backbone does not use and the tensors skipped for a shape mismatch
are reported (:class:`PretrainedReport`, and a warning). The input convolution's weights are
adapted when the file was made for another number of input channels (channels repeated
cyclically and scaled by ``c_file / c_in``, so a constant input gives the same response).

Architectures must support timm's ``forward_intermediates`` and ``prune_intermediate_layers``
(timm >= 1.0.3 for ViTs, ResNets, ConvNeXts and EfficientNets; later releases for more, e.g. the
MetaFormers such as ``poolformer_s12``).
ViTs need ``img_size`` (any; with ``dynamic_img_size: true`` the position embedding is resampled
to the plane size at call time) and a small ``patch_size`` in ``model_kwargs``.

timm needs torchvision. torchvision wheels built for CUDA fail to load their C++ operators next
to a CPU-only torch, and torchvision 0.28 then fails at import while registering a kernel for
its ``nms`` operator; timm uses none of those operators. :func:`import_timm` handles exactly that
case: it declares the two operator schemas the import needs (``torchvision::nms`` and ``qnms``,
without kernels) and imports again.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import torch
from torch import nn

from .base import FieldEncoder, Tokens
from .geometry import WALL_FEATURES, axis_period, grid_positions, pad_field, token_centres, wall_features
from .layers import TransformerBlock

__all__ = ["PretrainedReport", "TimmPlaneEncoder", "import_timm", "load_pretrained"]

_TORCHVISION_STUBS: list[Any] = []  # keeps the stub operator library alive


def import_timm() -> ModuleType:
    """``import timm``, with a clear error when it is missing and the torchvision work-around above."""
    try:
        import timm
    except ModuleNotFoundError as error:
        raise ImportError("the 'timm' encoder needs the timm package (pip install 'timm>=1.0.3')") from error
    except RuntimeError as error:
        if "torchvision::" not in str(error) or _TORCHVISION_STUBS:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] in ("timm", "torchvision")]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "FRAGMENT")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_STUBS.append(library)
        import timm
    return timm


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did with a weights file."""

    path: str
    loaded: list[str] = dataclass_field(default_factory=list)
    missing: list[str] = dataclass_field(default_factory=list)
    unused: list[str] = dataclass_field(default_factory=list)
    adapted: list[str] = dataclass_field(default_factory=list)
    skipped: list[str] = dataclass_field(default_factory=list)

    def summary(self) -> str:
        """One paragraph naming the counts and the first keys of each kind."""
        def names(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")

        parts = [f"{len(self.loaded)} tensors loaded from {self.path}"]
        kinds = (("input convolution adapted", self.adapted), ("missing in the file (kept at initialisation)", self.missing),
                 ("not used by the encoder", self.unused), ("skipped for a shape mismatch", self.skipped))
        for label, keys in kinds:
            if keys:
                parts.append(f"{len(keys)} {label}: {names(keys)}")
        return "; ".join(parts)


def _adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Input-convolution weights ``(out, c_file, ...)`` for ``in_channels`` inputs.

    The file's channels are repeated cyclically and scaled by ``c_file / in_channels``.
    """
    c_file = weight.shape[1]
    index = torch.arange(in_channels) % c_file
    return weight.index_select(1, index) * (c_file / in_channels)


def load_pretrained(backbone: nn.Module, path: str | Path, in_channels: int) -> PretrainedReport:
    """Load a local weights file into a timm ``backbone`` (``strict=False``); see the module notes.

    The report's ``unused`` lists the file's keys the backbone lacks; :class:`TimmPlaneEncoder`
    adds those of the layers it prunes afterwards.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file (weights are never downloaded).
    """
    timm = import_timm()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights {str(path)!r} not found: pretrained_path must name a local file "
                                "(weights are never downloaded)")
    state = dict(timm.models.load_state_dict(str(path), use_ema=False))
    own = backbone.state_dict()
    first_conv = getattr(backbone, "pretrained_cfg", {}).get("first_conv")
    first_key = f"{first_conv}.weight" if isinstance(first_conv, str) else None
    report = PretrainedReport(str(path))
    for key in list(state):
        if key not in own or own[key].shape == state[key].shape:
            continue
        value, target = state[key], own[key]
        same_kernel = value.ndim == target.ndim and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]
        if key == first_key and same_kernel:
            state[key] = _adapt_input_channels(value, in_channels)
            report.adapted.append(key)
        else:
            report.skipped.append(f"{key} {tuple(value.shape)} -> {tuple(target.shape)}")
            del state[key]
    result = backbone.load_state_dict(state, strict=False)
    report.missing, report.unused = list(result.missing_keys), list(result.unexpected_keys)
    report.loaded = [key for key in state if key in own]
    return report


class TimmPlaneEncoder(FieldEncoder, name="timm"):
    """Field ``(batch, in_channels, nx, ny, nz)`` -> :class:`Tokens` from a timm backbone on the x-z planes.

    Parameters
    ----------
    in_channels
        Channels of the field: the backbone's ``in_chans``.
    dim
        Token channels.
    model
        A timm architecture name (``timm.list_models()``), e.g. ``"resnet18"``,
        ``"convnext_atto"``, ``"poolformer_s12"`` or ``"vit_tiny_patch16_224"``.
    model_kwargs
        Extra ``timm.create_model`` arguments (plain values), e.g. for a small ViT
        ``{"img_size": [16, 12], "patch_size": 4, "depth": 2, "embed_dim": 64, "num_heads": 2,
        "dynamic_img_size": true}``.
    feature_level
        Index into the backbone's ``feature_info`` (negative from the end) of the feature map to
        use; its ``reduction`` is the token size ``s`` in x and z.
    halo
        Tokens of circular padding on each side of a plane, cropped from the feature map.
    depth
        Transformer blocks along y after the backbone.
    heads, mlp_ratio
        Of those blocks.
    pretrained_path
        Local weights file for the backbone, or ``None`` (see the module notes).
    """

    def __init__(self, in_channels: int, dim: int, model: str, model_kwargs: Mapping[str, Any] | None = None,
                 feature_level: int = 1, halo: int = 1, depth: int = 1, heads: int = 4, mlp_ratio: float = 2.0,
                 pretrained_path: str | None = None) -> None:
        super().__init__()
        timm = import_timm()
        if not isinstance(model, str) or not timm.is_model(model):
            close = difflib.get_close_matches(str(model), timm.list_models(), n=5)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise ValueError(f"timm {timm.__version__} has no architecture {model!r} (see timm.list_models()){hint}")
        if int(halo) != halo or halo < 0:
            raise ValueError(f"halo must be a non-negative integer, got {halo!r}")
        self.in_channels, self.dim, self.model_name, self.halo = int(in_channels), int(dim), model, int(halo)
        kwargs = dict(model_kwargs or {})
        for key in ("img_size", "patch_size"):  # YAML gives lists; timm wants tuples or ints
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        try:
            backbone = timm.create_model(model, pretrained=False, num_classes=0, in_chans=self.in_channels, **kwargs)
        except TypeError as error:
            raise TypeError(f"timm architecture {model!r} rejected model_kwargs {sorted(kwargs)}: {error}") from error
        if not (hasattr(backbone, "forward_intermediates") and hasattr(backbone, "prune_intermediate_layers")):
            raise ValueError(f"timm architecture {model!r} lacks forward_intermediates/prune_intermediate_layers in timm "
                             f"{timm.__version__}; a later timm release may have them")
        self.pretrained_report = load_pretrained(backbone, pretrained_path, self.in_channels) if pretrained_path else None
        info = list(backbone.feature_info)
        if not -len(info) <= feature_level < len(info):
            raise ValueError(f"feature_level {feature_level} out of range for {model!r}, which has {len(info)} feature "
                             f"levels (reductions {[f['reduction'] for f in info]})")
        self.feature_level = feature_level % len(info)
        self.stride = int(info[self.feature_level]["reduction"])
        backbone.prune_intermediate_layers([self.feature_level], prune_norm=True, prune_head=True)
        if self.pretrained_report is not None:
            report, kept = self.pretrained_report, set(backbone.state_dict())
            report.unused += [key for key in report.loaded if key not in kept]
            report.loaded = [key for key in report.loaded if key in kept]
            if report.missing or report.unused or report.skipped:
                warnings.warn(f"pretrained {model!r} backbone: {report.summary()}", stacklevel=2)
        self.backbone = backbone
        self.patch = (self.stride, 1, self.stride)
        self.proj = nn.Linear(int(info[self.feature_level]["num_chs"]), self.dim)
        self.position = nn.Linear(WALL_FEATURES, self.dim)
        self.blocks = nn.ModuleList(TransformerBlock(self.dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(self.dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone feature map ``(n, C, h, w)`` of images ``(n, in_channels, H, W)``."""
        try:
            return self.backbone.forward_intermediates(images, indices=[self.feature_level], intermediates_only=True)[0]
        except (AssertionError, RuntimeError) as error:
            size = tuple(images.shape[2:])
            raise RuntimeError(f"timm backbone {self.model_name!r} failed on planes of {size} pixels (for a ViT set "
                               f"model_kwargs dynamic_img_size: true or a matching img_size): {error}") from error

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:
        self.check_field(field)
        batch, channels, nx, ny, nz = field.shape
        s, halo = self.stride, self.halo * self.stride
        padding = ((0, -nx % s), (0, 0), (0, -nz % s))
        planes = pad_field(field, ((halo, padding[0][1] + halo), (0, 0), (halo, padding[2][1] + halo)))
        big_x, big_z = planes.shape[2], planes.shape[4]
        images = planes.permute(0, 3, 1, 2, 4).reshape(batch * ny, channels, big_x, big_z)
        maps = self.features(images)
        if maps.shape[2:] != (big_x // s, big_z // s):
            raise RuntimeError(f"timm backbone {self.model_name!r} gave a {tuple(maps.shape[2:])} feature map for "
                               f"{(big_x, big_z)}-pixel planes, expected {(big_x // s, big_z // s)} at stride {s}")
        tx, tz = (nx + padding[0][1]) // s, (nz + padding[2][1]) // s
        maps = maps[:, :, self.halo:self.halo + tx, self.halo:self.halo + tz]
        tokens = self.proj(maps.reshape(batch, ny, -1, tx, tz).permute(0, 3, 4, 1, 2))  # (batch, tx, tz, ny, dim)
        coords = {axis: coords[axis].to(field.device) for axis in "xyz"}
        cx, cy, cz = token_centres(coords, self.patch, padding)
        tokens = tokens + self.position(wall_features(cy).to(self.position.weight.dtype))
        columns = tokens.reshape(batch * tx * tz, ny, self.dim)
        for block in self.blocks:
            columns = block(columns)
        tokens = self.norm(columns).view(batch, tx, tz, ny, self.dim).transpose(2, 3).reshape(batch, tx * ny * tz, self.dim)
        return Tokens(
            tokens=tokens,
            positions=grid_positions(cx, cy, cz),
            periods=(axis_period(coords["x"]), axis_period(coords["z"])),
            grid_shape=(tx, ny, tz),
            patch=self.patch,
            padding=padding,
            field_shape=(nx, ny, nz),
        )
