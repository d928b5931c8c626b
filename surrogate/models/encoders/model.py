r"""The encoder-processor-decoder surrogate, registered as ``"encoder_processor_decoder"``.

.. math::
    \mathrm{tokens} = E(q),\qquad z = P(\mathrm{tokens}),\qquad
    y = q_{\mathrm{last}} + D(z,\ q),

with ``q`` the input history stacked into ``n_history * n_var`` channels, ``E`` one of the field
encoders of this package (``encoder``), ``P`` the latent processor (:mod:`.processor`), ``D``
the patch decoder (:mod:`.decoder`, with ``q`` as its skip field) and ``q_last`` the last input
state: the network predicts the increment over one snapshot spacing (a residual), which starts
near persistence and keeps long rollouts from drifting off at the first steps.

Encoders (``encoder``; kind-specific options in ``encoder_options``):

=========================  =========================================  ==============================
kind                       what                                       ``encoder_options``
=========================  =========================================  ==============================
``"vit"``                  global attention over all tokens           none
``"window"``               Swin-style (shifted) windowed attention    ``window`` (tokens)
``"metaformer_pooling"``   PoolFormer blocks (avgpool - identity)     ``pool_size``
``"metaformer_spectral"``  global filter in x-z, depthwise conv in y  ``modes``, ``y_kernel``
``"timm"``                 a timm image backbone on the x-z planes    ``model``, ``model_kwargs``,
                                                                      ``feature_level``, ``halo``
=========================  =========================================  ==============================

``patch`` sets the token size of the patch encoders; the ``"timm"`` encoder's token size is
the backbone's stride at the chosen level (``patch`` is not used). ``encoder_depth`` counts the
encoder's blocks (for ``"timm"``: the blocks along y after the backbone).

Presets (``count_parameters``; n_var 3, n_history 1):

=============  ===================================================================  ==========
preset         configuration                                                        parameters
=============  ===================================================================  ==========
``cpu``        window encoder, dim 48, 4 heads, patch (2, 3, 2), window (4, 4, 4),      69,667
               2 blocks, implicit processor (1 block looped 4 times), decoder
               hidden 16
``paper``      window encoder, dim 160, 8 heads, patch (2, 3, 2), window (4, 4, 4), 1,138,051
               4 blocks, implicit processor looped 8 times, decoder hidden 48
=============  ===================================================================  ==========

``paper`` is sized like IFactFormer-m's 1,163,187 parameters. Presets for each encoder kind at
the CPU size (70-115 k parameters): ``vit_cpu`` (patch (4, 3, 4)), ``window_cpu`` (= ``cpu``),
``pooling_cpu``, ``spectral_cpu``, and with timm installed ``timm_convnext_cpu``
(``convnext_atto`` up to its first stage, stride 4), ``timm_vit_cpu`` (a 2-block timm ViT with
4 x 4 patches) and ``timm_resnet_cpu`` (``resnet18`` up to its first stage, stride 4: 213 k
parameters, most of them in the ResNet stem and first stage).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Mapping, Sequence

import torch

from ..registry import SurrogateModel
from . import metaformer, timm_adapter, vit, window  # noqa: F401  (the encoders register on import)
from .base import ENCODERS, FieldEncoder
from .decoder import PatchDecoder
from .processor import LatentProcessor

__all__ = ["ENCODERS", "EncoderProcessorDecoder", "build_encoder"]


def build_encoder(
    kind: str,
    in_channels: int,
    dim: int,
    patch: Sequence[int],
    depth: int,
    heads: int,
    mlp_ratio: float,
    options: Mapping[str, Any] | None = None,
    pretrained_path: str | None = None,
) -> FieldEncoder:
    """The field encoder registered as ``kind`` (:data:`ENCODERS`, see the module table) with its ``options``.

    Of the shared arguments each encoder takes those its constructor names (the MetaFormers take no
    ``heads``, the timm encoder no ``patch``); ``options`` are the rest of its arguments.

    Raises
    ------
    ValueError
        For an unknown kind, or ``pretrained_path`` with an encoder that loads no pretrained weights.
    TypeError
        For an option the kind does not take, naming the ones it does.
    """
    if kind not in ENCODERS:
        raise ValueError(f"unknown encoder {kind!r}; choose one of {', '.join(sorted(ENCODERS))}")
    cls = ENCODERS[kind]
    shared = dict(in_channels=in_channels, dim=dim, patch=patch, depth=depth, heads=heads, mlp_ratio=mlp_ratio,
                  pretrained_path=pretrained_path)
    parameters = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    if pretrained_path is not None and "pretrained_path" not in parameters:
        raise ValueError(f"pretrained_path applies to the 'timm' encoder only, not to {kind!r}")
    fixed = {key: value for key, value in shared.items() if key in parameters}
    accepted = [p for p in parameters if p not in shared]
    options = dict(options or {})
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise TypeError(f"encoder {kind!r} takes no option(s) {', '.join(unknown)}; "
                        f"its options: {', '.join(accepted) or 'none'}")
    return cls(**fixed, **options)


_CPU = dict(n_var=3, n_history=1, encoder="window", dim=48, patch=(2, 3, 2), encoder_depth=2, heads=4, mlp_ratio=2.0,
            encoder_options={"window": (4, 4, 4)}, processor="implicit", processor_depth=4, decoder_hidden=16)
_PAPER = dict(_CPU, dim=160, heads=8, encoder_depth=4, processor_depth=8, decoder_hidden=48)
_TIMM_VIT = {"img_size": (16, 12), "patch_size": 4, "depth": 2, "embed_dim": 48, "num_heads": 4, "dynamic_img_size": True}
_PRESETS = {
    "cpu": _CPU,
    "paper": _PAPER,
    "vit_cpu": dict(_CPU, encoder="vit", patch=(4, 3, 4), encoder_options={}),
    "window_cpu": _CPU,
    "pooling_cpu": dict(_CPU, encoder="metaformer_pooling", encoder_depth=4, encoder_options={"pool_size": 3}),
    "spectral_cpu": dict(_CPU, encoder="metaformer_spectral", encoder_depth=4,
                         encoder_options={"modes": (4, 3), "y_kernel": 3}),
    "timm_resnet_cpu": dict(_CPU, encoder="timm", encoder_depth=1,
                            encoder_options={"model": "resnet18", "feature_level": 1, "halo": 1}),
    "timm_convnext_cpu": dict(_CPU, encoder="timm", encoder_depth=1,
                              encoder_options={"model": "convnext_atto", "feature_level": 0, "halo": 1}),
    "timm_vit_cpu": dict(_CPU, encoder="timm", encoder_depth=1,
                         encoder_options={"model": "vit_tiny_patch16_224", "model_kwargs": _TIMM_VIT, "feature_level": -1,
                                          "halo": 0}),
}


class EncoderProcessorDecoder(SurrogateModel, name="encoder_processor_decoder", presets=_PRESETS):
    """Field encoder -> latent processor -> patch decoder, predicting the increment of the last state.

    See the module documentation for the encoders and presets.

    Parameters
    ----------
    n_var
        Variables in and out (``u, v, w``: 3).
    n_history
        Snapshots in the input window.
    encoder
        ``"vit"``, ``"window"``, ``"metaformer_pooling"``, ``"metaformer_spectral"`` or ``"timm"``.
    dim
        Token channels.
    patch
        Cells per token ``(px, py, pz)`` of the patch encoders.
    encoder_depth
        Encoder blocks.
    heads
        Attention heads of every attention layer (``dim / heads >= 4`` for the rotary embedding).
    mlp_ratio
        Width of the channel MLPs in units of ``dim``.
    encoder_options
        Kind-specific encoder arguments (module table).
    processor
        ``"implicit"``, ``"transformer"`` or ``"none"`` (:class:`~.processor.LatentProcessor`).
    processor_depth
        Loop iterations (implicit) or blocks (transformer).
    decoder_hidden
        Channels of the decoder on the cell grid.
    pretrained_path
        Local weights file for a ``"timm"`` backbone (never downloaded). It only chooses initial
        weights: :func:`~surrogate.models.load_model` rebuilds without it, since the checkpoint's
        state dict holds the weights.
    """

    weight_init_arguments: ClassVar[tuple[str, ...]] = ("pretrained_path",)

    def __init__(
        self,
        n_var: int = 3,
        n_history: int = 1,
        encoder: str = "window",
        dim: int = 48,
        patch: Sequence[int] = (2, 3, 2),
        encoder_depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        encoder_options: Mapping[str, Any] | None = None,
        processor: str = "implicit",
        processor_depth: int = 4,
        decoder_hidden: int = 16,
        pretrained_path: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("n_var", n_var), ("n_history", n_history), ("dim", dim), ("heads", heads),
                            ("decoder_hidden", decoder_hidden)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if int(encoder_depth) != encoder_depth or encoder_depth < 0:
            raise ValueError(f"encoder_depth must be a non-negative integer, got {encoder_depth!r}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.n_var, self.n_history = int(n_var), int(n_history)
        in_channels = self.n_var * self.n_history
        self.encoder = build_encoder(encoder, in_channels, dim, patch, encoder_depth, heads, mlp_ratio, encoder_options,
                                     pretrained_path)
        self.processor = LatentProcessor(dim, heads, mlp_ratio, processor, processor_depth)
        self.decoder = PatchDecoder(dim, self.n_var, self.encoder.patch, decoder_hidden, skip_channels=in_channels)

    def forward(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next normalised state from the last ``n_history`` normalised states.

        Parameters
        ----------
        x
            ``(batch, n_history, n_var, nx, ny, nz)``, oldest snapshot first.
        coords
            Cell-centre coordinates in h: ``{"x": (nx,), "y": (ny,), "z": (nz,)}``.

        Returns
        -------
        torch.Tensor
            ``(batch, n_var, nx, ny, nz)``, float32 (also under autocast).
        """
        self.check_input(x, coords, self.n_history, self.n_var)
        field = x.flatten(1, 2)
        tokens = self.processor(self.encoder(field, coords))
        increment = self.decoder(tokens, skip=field)
        return x[:, -1] + increment.to(torch.promote_types(increment.dtype, x.dtype))
