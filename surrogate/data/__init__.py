"""Filtered-DNS datasets for training surrogates.

* :mod:`~surrogate.config.dataset` — dataset case files (``surrogate dataset CASE``);
* :mod:`~surrogate.data.generate` — running or reading the DNS, filtering, writing the folder;
* :mod:`~surrogate.data.manifest` — the folder's ``manifest.yaml``;
* :mod:`~surrogate.data.normalization` — mean and standard deviation per variable and y-plane;
* :mod:`~surrogate.data.windows` — the torch ``Dataset`` of ``(history, target)`` windows;
* :mod:`~surrogate.data.the_well` — export and import in the HDF5 layout of the_well.
"""

from ..config.dataset import DatasetCase, load_dataset_case
from .generate import DatasetFolderError, generate_dataset, select_snapshots
from .manifest import ManifestError, read_manifest
from .normalization import Normalization, compute_normalization
from .the_well import export_the_well, import_the_well
from .windows import WindowDataset, WindowError

__all__ = [
    "DatasetCase",
    "DatasetFolderError",
    "ManifestError",
    "Normalization",
    "WindowDataset",
    "WindowError",
    "compute_normalization",
    "export_the_well",
    "generate_dataset",
    "import_the_well",
    "load_dataset_case",
    "read_manifest",
    "select_snapshots",
]
