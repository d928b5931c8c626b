"""Neural-operator surrogates of the filtered channel flow.

* :mod:`~surrogate.models.registry` — the model interface, ``build_model``, checkpoints;
* :mod:`~surrogate.models.ifactformer` — IFactFormer-m (parallel factorized attention) and
  IFactFormer-o (chained), implicit (looped, weight-shared) transformers;
* :mod:`~surrogate.models.fno` — the Fourier neural operator and its implicit variant IFNO;
* :mod:`~surrogate.models.encoders` — vision-transformer field encoders (ViT, shifted windows,
  MetaFormer pooling/spectral mixers, any timm image backbone on the x-z planes) and the
  encoder-processor-decoder surrogate built on them.

>>> from surrogate.models import build_model, available_models
>>> available_models()
['encoder_processor_decoder', 'fno', 'ifactformer_m', 'ifactformer_o', 'ifno']
>>> model = build_model("ifactformer_m", preset="cpu")  # doctest: +SKIP
"""

from .registry import (
    SurrogateModel,
    available_models,
    build_model,
    count_parameters,
    load_model,
    model_presets,
    save_model,
)

__all__ = [
    "SurrogateModel",
    "available_models",
    "build_model",
    "count_parameters",
    "load_model",
    "model_presets",
    "save_model",
]

from . import encoders, fno, ifactformer  # noqa: E402,F401  (the built-in models register on import)
