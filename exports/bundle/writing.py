"""Writing a bundle without losing anything: staged beside its target, sized, hashed, swapped in whole.

Everything is written into a staging directory beside the target, with the
target locked; only when every runtime that ran passed is it fsynced and
swapped in by one atomic exchange. A failed, interrupted or killed run leaves
the target as it was (see :mod:`zoo.files`).
"""

from __future__ import annotations

import json
from pathlib import Path

from zoo import files
from zoo.exports.bundle.layout import CARD_FILE
from zoo.exports.bundle.manifest import Manifest
from zoo.exports.bundle.reading import file_sha256, inventory


def check_target(target: Path, force: bool) -> None:
    """Refuse a bundle directory that cannot or must not be written, before any work is done."""
    files.check_target(target, force=force, directory=True)


def staging(target: Path):
    """The target locked and a fresh directory beside it to fill (see :func:`zoo.files.staged_directory`)."""
    return files.staged_directory(target)


def commit(staged: Path, target: Path) -> None:
    """Swap ``staged`` in at ``target`` in one step, durably; the old ``target`` survives until then."""
    files.replace_directory(staged, target)



def write_manifest(path: Path, manifest: Manifest) -> None:
    """``manifest.json`` beside the bundle's other files, whose sizes and sha256 it records: each read of one is
    bounded by its size and checked against its hash."""
    manifest.bytes, digests = inventory(path.parent, leave_out=(path.name, CARD_FILE))
    manifest.sha256.update(digests)
    path.write_text(json.dumps(manifest.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    return file_sha256(path)
