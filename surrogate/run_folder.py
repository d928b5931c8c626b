"""The one rule of every run folder (DNS/LES, training, closure training): a fresh start or a resume.

A fresh start refuses a folder that holds an earlier run unless told to overwrite it (then its
files go); a resume needs the run's checkpoint. The messages name the folder, the files and the
way on (``--resume``, ``--overwrite``), so that an interrupted run always has one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

__all__ = ["RunFolderError", "require_checkpoint", "start_fresh"]


class RunFolderError(RuntimeError):
    """The run folder holds something that does not fit the requested start or resume."""


def start_fresh(
    folder: Path,
    files: Iterable[Path],
    *,
    overwrite: bool,
    what: str = "a run",
    checkpoint: Path | None = None,
    hint: str = "",
    error: type[Exception] = RunFolderError,
) -> None:
    """Clear ``folder`` for a fresh run: remove those of ``files`` that exist when ``overwrite``.

    Without ``overwrite`` an existing file raises ``error``: ``"<folder> already holds <what>
    (<files>); continue it with --resume or start over with --overwrite<hint>"`` (when there is no
    ``checkpoint`` file to resume from, it says so instead of offering ``--resume``).
    """
    existing = [path for path in files if path.exists()]
    if existing and not overwrite:
        resumable = checkpoint is None or checkpoint.exists()
        way_on = "continue it with --resume or start over" if resumable else "it has no checkpoint to resume from; start over"
        raise error(f"{folder} already holds {what} ({', '.join(p.name for p in existing)}); {way_on} with --overwrite{hint}")
    for stale in existing:
        stale.unlink()


def require_checkpoint(path: Path, error: type[Exception] = RunFolderError) -> Path:
    """``path`` if it exists; else ``error`` saying there is nothing to resume."""
    if not path.exists():
        raise error(f"{path} does not exist: nothing to resume (start the run without --resume)")
    return path
