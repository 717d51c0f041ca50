"""Writing files without losing any, even to SIGKILL or a power cut.

Every file or directory zoo writes goes through here:

- the target is refused up front when it cannot or must not be written;
- a lock beside the target (``.NAME.lock``, held with ``flock``) lets one
  writer in at a time; a second gets one line naming the first;
- the new version is written beside the target, fsynced (files, then the
  directory that holds them), and put in place by one ``rename`` (a file) or
  one ``renameat2(RENAME_EXCHANGE)`` (a directory: the old and the new swap in
  a single step, so the target is never absent), then the parent directory is
  fsynced;
- a run killed at any point leaves the complete old version or the complete
  new one at the target; its leftovers (a staging directory, the old version
  after a swap, a temporary file, the lock file) are removed by the next zoo
  command on that target, which says so in one line;
- modes follow the umask: 0644 files and 0755 directories under umask 022
  (``mkstemp``/``mkdtemp`` would make them 0600/0700).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from zoo.errors import OutputPathError

#: Leftover names beside a target ``NAME``: what a killed run may leave behind.
STAGING, OLD, TMP, LOCK = ".staging-", ".old-", ".tmp", ".lock"


def sha256(path: str | os.PathLike):
    """The sha256 hash object of a file's bytes, read 1 MiB at a time (``.hexdigest()`` or ``.digest()``)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest


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


# -- modes and durability ------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~_umask()


def dir_mode() -> int:
    return 0o777 & ~_umask()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file below ``root``, then every directory, deepest first."""
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def chmod_tree(root: Path) -> None:
    """Give everything below ``root`` (and root) the modes the umask asks for."""
    files, dirs = file_mode(), dir_mode()
    os.chmod(root, dirs)
    for folder, subdirs, names in os.walk(root):
        for name in subdirs:
            os.chmod(os.path.join(folder, name), dirs)
        for name in names:
            os.chmod(os.path.join(folder, name), files)


# -- the lock and the recovery of a killed run's leftovers ---------------------------------------


def _hidden(target: Path, kind: str) -> str:
    return f".{target.name}{kind}"


def leftovers(target: Path) -> list[Path]:
    """What killed runs left beside ``target``: staging directories, old versions, temporary files."""
    parent = target.parent
    if not parent.is_dir():
        return []
    stem = f".{target.name}"
    found = []
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith(stem):
            continue
        rest = name[len(stem):]
        if rest.startswith((STAGING, OLD)) or (rest.startswith(".") and rest.endswith(TMP)):
            found.append(entry)
    return sorted(found)


def recover(target: Path, stale_pid: str | None = None) -> None:
    """Remove (or, where the target is missing, restore) what a killed run left beside ``target``.

    Called with the target's lock held, so no live writer owns these. An ``.old-``
    directory is the previous version set aside by the fallback swap; if the target
    is missing it is put back, otherwise it is removed.
    """
    import shutil  # here, as below: shutil and tempfile are 4 ms of every command's start (zoo list imports this)

    found, removed = leftovers(target), []
    for path in found:
        if path.name.startswith(_hidden(target, OLD)) and not os.path.lexists(target) and _real_dir(path):
            os.replace(path, target)
            notice(f"restored {target} from an interrupted run's copy")
            continue
        if _real_dir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path.name)
    if found:
        fsync_dir(target.parent)
    if removed:
        notice(f"removed what an interrupted run left beside {target}: {', '.join(removed)}")
    elif stale_pid and not found:
        notice(f"an interrupted run (pid {stale_pid}) had left its lock on {target}; taken over")


def _real_dir(path: Path) -> bool:
    """A directory, not a link to one (a leftover is never followed out of the target's parent)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def notice(message: str) -> None:
    """One line on stderr about what zoo did to a target on its own."""
    print(f"zoo: {message}", file=sys.stderr)


#: A lock file holds a process id (and at most a line end), nothing else.
_LOCK_BYTES = 32
_PID = re.compile(rb"[0-9]{0,20}\s{0,4}")


def _open_lock(lock: Path, target: Path) -> int | None:
    """A descriptor of ``lock``: created now, or zoo's own lock left there; None when it vanished meanwhile.

    Never follows a symbolic link (``O_NOFOLLOW``; ``O_EXCL`` refuses a dangling one), never opens a FIFO
    or a device for writing, and never takes over a file that is not a lock (a lock holds a pid and
    nothing else, under one name): a planted link or a hard link to someone's file is refused, untouched.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(lock, flags | os.O_CREAT | os.O_EXCL, file_mode())
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputPathError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        fd = os.open(lock, flags | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO planted there cannot hang the open
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputPathError(f"{lock} is a symbolic link, not a lock: zoo never writes through one; remove "
                                  f"it (zoo makes and removes its own locks), then write {target} again") from None
        raise OutputPathError(f"cannot write {target}: {lock}: {exc.strerror or exc}") from None
    found = os.fstat(fd)
    content = os.pread(fd, _LOCK_BYTES + 1, 0) if stat.S_ISREG(found.st_mode) else b""
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1 or not _PID.fullmatch(content):
        os.close(fd)
        raise OutputPathError(f"{lock} is not a zoo lock (one holds a process id, in a file of its own): zoo left it "
                              f"untouched; remove it if you know what it is, then write {target} again")
    return fd


@contextlib.contextmanager
def locked(target: Path) -> Iterator[None]:
    """Hold the lock on ``target`` (one writer at a time), recovering a killed run's leftovers first."""
    import fcntl

    lock = target.parent / _hidden(target, LOCK)
    while True:
        fd = _open_lock(lock, target)
        if fd is None:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, _LOCK_BYTES, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputPathError(f"another zoo process (pid {holder}) is writing {target}: wait for it to finish, "
                                  "or choose another -o") from None
        if _same_file(fd, lock):  # the holder before us may have removed it as it finished: lock the one there
            break
        os.close(fd)
    stale = os.pread(fd, _LOCK_BYTES, 0).decode(errors="replace").strip()  # a run that never removed its lock
    try:
        os.ftruncate(fd, 0)  # zoo's own lock (checked above), held: the pid is ours to write
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        recover(target, stale or None)
        yield
    finally:
        if _same_file(fd, lock):
            with contextlib.suppress(OSError):
                lock.unlink()
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False


def _ours_alone(folder: Path) -> bool:
    """A directory this user owns and nobody else may write: the only place a reader tidies up."""
    try:
        found = os.stat(folder)
    except OSError:
        return False
    return found.st_uid == os.geteuid() and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def tidy(target: Path) -> None:
    """Recover a killed run's leftovers beside ``target``, for a reader (``zoo verify``), which must never
    fail or wait because of it: only in a directory of this user's alone, where nobody else can have planted
    a lock; in anyone else's it reads and leaves everything as it is."""
    target = Path(target)
    if not leftovers(target) and not os.path.lexists(target.parent / _hidden(target, LOCK)):
        return
    if not _ours_alone(target.parent) or not os.access(target.parent, os.W_OK | os.X_OK):
        return
    with contextlib.suppress(OutputPathError, OSError):
        with locked(target):
            pass


def _make_parents(path: Path) -> list[Path]:
    """``mkdir -p path.parent``; return the directories it created (outermost first)."""
    created = [p for p in reversed(path.parents) if not p.exists()]
    for folder in created:
        try:
            folder.mkdir(mode=dir_mode())
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


# -- files --------------------------------------------------------------------------------------


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path`` and rename it into place when it returns.

    The file is fsynced before the rename and the directory after it; the target is
    locked for the duration; the mode follows the umask.
    """
    path = Path(path)
    created = _make_parents(path)
    try:
        with locked(path):
            _write_and_rename(path, write)
    except BaseException:
        _remove_created(created)
        raise


def _write_and_rename(path: Path, write: Callable[[BinaryIO], None]) -> None:
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP)
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}; nothing was written") from None
        raise


# -- directories --------------------------------------------------------------------------------


@contextlib.contextmanager
def staged_directory(target: Path) -> Iterator[Path]:
    """Lock ``target``, and yield a fresh directory beside it to fill; swap it in with :func:`replace_directory`.

    If the block raises (or is interrupted), the staging directory and any parent
    directories created for it are removed and the target is left as it was.
    """
    import shutil
    import tempfile

    target = Path(target)
    created = _make_parents(target)
    try:
        with locked(target):
            staged = Path(tempfile.mkdtemp(prefix=_hidden(target, STAGING), dir=target.parent))
            try:
                yield staged
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
    except BaseException:
        _remove_created(created)
        raise


def replace_directory(staged: Path, target: Path) -> None:
    """Make ``staged`` durable and swap it in at ``target`` in one step; the old version is then removed."""
    import shutil

    chmod_tree(staged)
    fsync_tree(staged)
    if not target.exists():
        os.rename(staged, target)
        fsync_dir(target.parent)
        return
    if exchange(staged, target):
        fsync_dir(target.parent)
        shutil.rmtree(staged, ignore_errors=True)  # the old version, now at the staging path
        return
    # No atomic exchange on this system or file system: set the old version aside, then rename.
    # A kill between the two renames leaves the target missing until the next zoo command on it
    # restores the old version (see recover).
    old = target.with_name(_hidden(target, OLD) + os.urandom(4).hex())
    os.rename(target, old)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(old, target)
        raise
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where it is not supported."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
