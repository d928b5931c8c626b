"""Vision-transformer field encoders and the encoder-processor-decoder surrogate built on them.

One module per job:

* :mod:`~surrogate.models.encoders.base` — :class:`Tokens`, the :class:`FieldEncoder` and
  :class:`FieldDecoder` interfaces;
* :mod:`~surrogate.models.encoders.geometry` — channel geometry: periodic/wall padding, token
  centres, wall features;
* :mod:`~surrogate.models.encoders.layers` — attention with periodic x/z rotary embeddings,
  transformer blocks;
* :mod:`~surrogate.models.encoders.patch` — 3-D anisotropic patch embedding;
* :mod:`~surrogate.models.encoders.vit` — ViT encoder (global attention);
* :mod:`~surrogate.models.encoders.window` — Swin-style shifted-window encoder;
* :mod:`~surrogate.models.encoders.metaformer` — MetaFormer encoders (pooling or spectral mixer);
* :mod:`~surrogate.models.encoders.timm_adapter` — any timm image backbone on the x-z planes
  (imports timm only when used);
* :mod:`~surrogate.models.encoders.decoder` — tokens back to the cell grid;
* :mod:`~surrogate.models.encoders.processor` — the latent processor;
* :mod:`~surrogate.models.encoders.model` — :class:`EncoderProcessorDecoder`, registered as
  ``"encoder_processor_decoder"``.
"""

from .base import FieldDecoder, FieldEncoder, Tokens
from .decoder import PatchDecoder
from .metaformer import MetaFormerEncoder
from .model import ENCODERS, EncoderProcessorDecoder, build_encoder
from .patch import PatchEmbed3d
from .processor import LatentProcessor
from .vit import ViTEncoder
from .window import WindowEncoder

__all__ = [
    "ENCODERS",
    "EncoderProcessorDecoder",
    "FieldDecoder",
    "FieldEncoder",
    "LatentProcessor",
    "MetaFormerEncoder",
    "PatchDecoder",
    "PatchEmbed3d",
    "Tokens",
    "ViTEncoder",
    "WindowEncoder",
    "build_encoder",
]
