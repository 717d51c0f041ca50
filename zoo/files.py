"""Writing files without losing any: refuse bad targets up front, write whole files or nothing."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from zoo.errors import OutputPathError


def check_target(path: Path, *, force: bool, directory: bool) -> None:
    """Refuse an output path that cannot or must not be written, before any work is done."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {path}: {parent} is a file, not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputPathError(f"cannot write {path}: no permission to write in {parent}")
            break
    if path.exists() or path.is_symlink():
        if directory and not path.is_dir():
            raise OutputPathError(f"{path} exists and is not a directory; choose another -o")
        if not directory and path.is_dir():
            raise OutputPathError(f"{path} is a directory; give a file path")
        if not force:
            raise OutputPathError(f"{path} already exists: pass --force to replace it, or choose another -o")


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path`` and rename it into place when it returns."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
        raise
