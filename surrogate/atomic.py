"""Atomic file writes: a file is either absent, its previous version, or complete.

Every writer of a small file that a later run reads (checkpoints, model weights, manifests)
goes through :func:`atomic_write`: the data goes to ``path + suffix``, is flushed to disk and
renamed over ``path``; on any failure the temporary file is removed, so no half-written file
that looks complete is left behind. Files written by a library that opens them itself (netCDF,
HDF5) are written under a temporary name and then :func:`publish`-ed. :func:`save_torch` adds a clear message for the failed
writes that torch reports as ``RuntimeError`` (a full disk).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import IO, Any, Iterator

import torch

__all__ = ["atomic_write", "fsync_dir", "publish", "save_torch"]


@contextmanager
def atomic_write(path: str | PathLike[str], mode: str = "wb", suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """Open ``path + suffix`` for writing; on a clean exit flush it, fsync it and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + suffix)
    try:
        with open(tmp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def save_torch(obj: Any, path: str | PathLike[str]) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; a failed write is an :class:`OSError` naming ``path``."""
    path = Path(path)
    try:
        with atomic_write(path) as handle:
            torch.save(obj, handle)
    except RuntimeError as exc:
        if "write" not in str(exc).lower():
            raise
        raise OSError(f"cannot write {path} (is the disk full?): {str(exc).splitlines()[0]}") from None
    return path


def publish(written: str | PathLike[str], path: str | PathLike[str]) -> Path:
    """Flush the finished file ``written`` to disk and rename it to ``path`` (then flush the folder)."""
    written, path = Path(written), Path(path)
    with open(written, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(written, path)
    fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | PathLike[str]) -> None:
    """Flush a directory entry (after a rename); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
