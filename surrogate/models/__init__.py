"""Neural-operator surrogates of the filtered channel flow.

* :mod:`~surrogate.models.registry` — the model interface, ``build_model``, checkpoints;
* :mod:`~surrogate.models.ifactformer` — IFactFormer-m (parallel factorized attention) and
  IFactFormer-o (chained), implicit (looped, weight-shared) transformers;
* :mod:`~surrogate.models.fno` — the Fourier neural operator and its implicit variant IFNO.

>>> from surrogate.models import build_model, available_models
>>> available_models()
['fno', 'ifactformer_m', 'ifactformer_o', 'ifno']
>>> model = build_model("ifactformer_m", preset="cpu")  # doctest: +SKIP
"""

from .registry import (
    SurrogateModel,
    available_models,
    build_model,
    count_parameters,
    load_model,
    model_presets,
    register_model,
    save_model,
)

__all__ = [
    "SurrogateModel",
    "available_models",
    "build_model",
    "count_parameters",
    "load_model",
    "model_presets",
    "register_model",
    "save_model",
]
