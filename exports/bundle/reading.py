"""Reading a bundle someone else made: a closed set of regular files, each read with a bound.

A bundle is passed around, and whoever made it, or can write where it lies, may
have planted a symbolic link to a private key, a link to ``/dev/zero``, a FIFO, a
file far larger than the manifest says, or a name that climbs out of the folder.
So zoo reads a bundle as a closed set:

- the tree holds directories and regular files only: no symbolic link, FIFO,
  socket or device anywhere in it (checked with ``lstat``, following nothing),
  and at most :data:`MAX_ENTRIES` entries;
- a file the manifest names is a relative path that stays inside the bundle;
- each file is opened without following a link (``O_NOFOLLOW``) and read with a
  bound: its size as the manifest records it (``bytes``), or, in a bundle
  written before sizes were recorded, :data:`CEILING`; and checked against the
  sha256 the manifest records for it.

The folder the user names may itself be a link (their own choice); nothing
inside it may be.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from zoo import files
from zoo.errors import VerifyError
from zoo.exports.bundle.layout import MANIFEST_FILE

#: Entries a bundle's tree may hold (a zoo export writes a few dozen).
MAX_ENTRIES = 10_000
#: manifest.json is read whole: a zoo manifest is a few KiB, with a long training history a few hundred.
MANIFEST_LIMIT = 16 << 20
#: protobuf's own limit on a message: no ONNX model or tensor file is larger.
CEILING = 2 << 30


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_tree(bundle: Path) -> None:
    """Refuse a bundle whose tree holds anything but directories and regular files, or too many entries."""
    seen = 0
    pending = [Path(bundle)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise VerifyError(f"cannot read {folder}: {exc.strerror or exc}") from None
        seen += len(entries)
        if seen > MAX_ENTRIES:
            raise VerifyError(f"{bundle} holds more than {MAX_ENTRIES:,} files: not a zoo bundle")
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append(Path(entry.path))
            elif not stat.S_ISREG(mode):
                raise VerifyError(f"{entry.path} is {_kind(mode)}: a bundle is read as a closed set of regular "
                                  "files, and zoo follows nothing out of it; remove it, or export the bundle again")


def member(bundle: Path, relative: object, what: str, *, directory: bool = False,
           sizes: dict[str, int] | None = None) -> Path:
    """The file (or ``directory``) the manifest names ``relative``, refused unless it lies inside the bundle
    (and, where ``sizes`` records its size, unless it has that size)."""
    where = Path(bundle) / MANIFEST_FILE
    if not isinstance(relative, str) or not relative:
        raise VerifyError(f"{where}: {what} must be a file name, got {relative!r}")
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative or "\0" in relative:
        raise VerifyError(f"{where} names {what} {relative!r}, which lies outside the bundle")
    path = Path(bundle, *parts)
    try:
        found = os.lstat(path)
        mode = found.st_mode
    except FileNotFoundError:
        raise VerifyError(f"{path} is missing (the manifest names it as {what}): the bundle is incomplete; "
                          "export it again") from None
    except OSError as exc:
        raise VerifyError(f"cannot read {path}: {exc.strerror or exc}") from None
    if directory and not stat.S_ISDIR(mode):
        raise VerifyError(f"{path} is {_kind(mode) if not stat.S_ISREG(mode) else 'a file'}, not the directory the "
                          f"manifest names as {what}")
    if not directory and not stat.S_ISREG(mode):
        raise VerifyError(f"{path} is {'a directory' if stat.S_ISDIR(mode) else _kind(mode)}, not the file the "
                          f"manifest names as {what}")
    size = (sizes or {}).get(PurePosixPath(*parts).as_posix())
    if size is not None and found.st_size != size:
        raise _changed(path, found.st_size, size)
    return path


def _changed(path: Path, found: int, size: int) -> VerifyError:
    return VerifyError(f"{path} has {found:,} bytes, the manifest says {size:,}: it changed after export; "
                       "export it again")


def read(path: Path, *, limit: int = CEILING, size: int | None = None, follow: bool = False) -> bytes:
    """A regular file's bytes, opened without following a link (unless ``follow``: a path the user named),
    refused when it is larger than ``limit`` or, when ``size`` is known, of another size."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise VerifyError(f"{path} does not exist") from None
    except OSError as exc:
        raise VerifyError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise VerifyError(f"{path} is {'a directory' if stat.S_ISDIR(found.st_mode) else _kind(found.st_mode)}, "
                              "not a file zoo reads")
        if size is not None and found.st_size != size:
            raise _changed(path, found.st_size, size)
        if found.st_size > limit:
            raise VerifyError(f"{path} has {found.st_size:,} bytes, more than the {limit:,} zoo reads of such a file")
        data = handle.read(limit + 1)
    if len(data) > limit or (size is not None and len(data) != size):
        raise VerifyError(f"{path} changed while it was read")
    return data


def read_member(bundle: Path, relative: object, what: str, sizes: dict[str, int],
                digests: dict[str, str] | None = None, *, limit: int = CEILING) -> tuple[Path, bytes]:
    """``member`` and ``read`` in one: the path and bytes of a file the manifest names, bounded by the size
    the manifest records for it (``sizes``, keyed by the relative path), else by ``limit``, and checked
    against its sha256 where the manifest records one (``digests``)."""
    path = member(bundle, relative, what, sizes=sizes)
    key = PurePosixPath(str(relative)).as_posix()
    data = read(path, limit=limit, size=sizes.get(key))
    expected = (digests or {}).get(key)
    if expected is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise VerifyError(f"checksum mismatch: {key} has sha256 {actual[:16]}..., the manifest says "
                              f"{str(expected)[:16]}...: the file changed after export; re-export it")
    return path, data


def inventory(root: Path, leave_out: tuple[str, ...] = ()) -> tuple[dict[str, int], dict[str, str]]:
    """Every regular file below ``root`` (a bundle being written): its size and its sha256, by relative path."""
    sizes, digests = {}, {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if relative not in leave_out:
                sizes[relative] = os.lstat(path).st_size
                digests[relative] = file_sha256(path)
    return dict(sorted(sizes.items())), dict(sorted(digests.items()))


def file_sha256(path: Path) -> str:
    return files.sha256(path).hexdigest()
