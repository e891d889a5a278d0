"""Transactional outputs: a folder (or a file) appears whole, or not at all.

:func:`atomic_folder` hands out a temporary sibling folder ``.<name>.tmp-XXXX``; when the ``with`` block ends
without an error every file and folder in it is fsynced and it is renamed onto ``<name>``. An existing
``<name>`` is replaced only with ``overwrite=True``: it is first renamed aside (``.<name>.old-XXXX``), the new
folder renamed in, then the old one deleted (with Ctrl-C held), so ``<name>`` is the old folder or the new one,
never a mix. A lock file ``.<name>.lock`` (``flock``, released by the kernel if the process dies) refuses a
second writer. An exception or Ctrl-C removes the temporary folder; leftovers of a killed writer
(``SIGKILL``) are cleaned up by the next writer of the same path, and a folder renamed aside but not yet
replaced is put back. Files are created with the normal permissions (the umask is respected).

This module imports nothing from ss4d but :mod:`ss4d.errors`, so every floor may use it.
"""

import errno
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ss4d.errors import OutputExistsError, OutputLockedError, OutputPathError

__all__ = ["atomic_file", "atomic_folder", "check_output", "fsync_tree"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _writable_ancestor(path: Path) -> Path:
    """The closest existing ancestor of ``path`` (where its missing parents would be created)."""
    p = path.parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(path: str | Path, *, overwrite: bool = False, kind: str = "folder") -> Path:
    """Refuse, before any work, an output that cannot be written or would be replaced without ``overwrite``.

    ``kind`` is ``"folder"`` (an empty existing folder is fine) or ``"file"``. Returns the absolute path.

    Raises:
        OutputPathError: the path or a parent is a file, or the place is not writable.
        OutputExistsError: the output exists (a non-empty folder, or a file) and ``overwrite`` is False.
    """
    path = Path(path).absolute()
    if kind not in ("folder", "file"):
        raise ValueError(f"`kind` must be 'folder' or 'file', got {kind!r}")
    anc = _writable_ancestor(path)
    if not anc.is_dir():
        raise OutputPathError(f"{anc} is a file, so {path} cannot be created; choose another output path")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputPathError(f"{anc} is not writable, so {path} cannot be created; choose another output path")
    if kind == "folder":
        if path.exists() and not path.is_dir():
            raise OutputPathError(f"{path} is a file, expected an output folder; choose another path or delete it")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise OutputExistsError(
                f"{path} exists and is not empty; pass --overwrite (API: overwrite=True) to replace it, "
                "or choose another folder"
            )
    else:
        if path.is_dir():
            raise OutputPathError(f"{path} is a folder, expected an output file path; choose a file name")
        if path.exists() and not overwrite:
            raise OutputExistsError(
                f"{path} exists; pass --overwrite (API: overwrite=True) to replace it, or choose another file"
            )
    return path


def fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every folder (children before parents), then ``root``."""
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on directories
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _normal_permissions(root: Path) -> None:
    """Files 0666 and folders 0777 minus the umask: some writers (mkdtemp, safetensors) create 0600 / 0700."""
    mask = _umask()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, (0o666 | (os.stat(p).st_mode & 0o111)) & ~mask)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o777 & ~mask)
    os.chmod(root, 0o777 & ~mask)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold ``.<name>.lock`` beside ``path`` (exclusive, non-blocking) for the duration of the block."""
    import fcntl

    lock_path = path.parent / f".{path.name}.lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"{path} is being written by another process (lock {lock_path} held); wait for it to finish or "
                "choose another output"
            ) from None
        try:  # the holder before us may have unlinked the file we opened: retry on the current one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def _recover(path: Path) -> None:
    """Clean up after a killed writer of ``path`` (we hold the lock, so no one else is writing)."""
    for p in path.parent.glob(f".{path.name}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    olds = sorted(path.parent.glob(f".{path.name}.old-*"))
    if olds and not path.exists():  # killed between "old aside" and "new in": put the old one back
        os.rename(olds.pop(), path)
    for p in olds:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM until the block ends (a Ctrl-C then lands after it, not inside)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # platforms without signal masks
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _replace(tmp: Path, path: Path) -> None:
    """Move ``tmp`` onto ``path``; an existing ``path`` is renamed aside first and deleted afterwards. Ctrl-C
    is held meanwhile, so an interrupted writer leaves the old folder or the new one, and no leftovers."""
    with _signals_deferred():
        old = None
        if path.exists() or path.is_symlink():
            old = path.parent / f".{path.name}.old-{secrets.token_hex(4)}"
            os.rename(path, old)
        os.rename(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()


@contextmanager
def atomic_folder(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """``with atomic_folder(out) as tmp:`` write into ``tmp``; on success ``tmp`` becomes ``out``.

    Raises:
        OutputPathError / OutputExistsError: see :func:`check_output` (checked again under the lock).
        OutputLockedError: another process is writing ``out``.
    """
    path = check_output(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path):
        _recover(path)
        check_output(path, overwrite=overwrite)
        tmp = None
        try:
            with _signals_deferred():  # a Ctrl-C between mkdtemp and the assignment would leak the folder
                tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
            yield tmp
            _normal_permissions(tmp)
            fsync_tree(tmp)
            _replace(tmp, path)
        except BaseException:
            if tmp is not None:
                with _signals_deferred():  # a second Ctrl-C waits until the clean-up is done
                    shutil.rmtree(tmp, ignore_errors=True)
            raise


def atomic_file(path: str | Path, write: Callable[[Path], Any], *, overwrite: bool = True) -> Path:
    """Call ``write(tmp)`` on a temporary sibling file, fsync it and rename it onto ``path``.

    Readers never see a partial file; the file gets the normal permissions (umask respected). With
    ``overwrite=False`` an existing ``path`` raises :class:`OutputExistsError` before ``write`` runs.
    """
    path = check_output(path, overwrite=overwrite, kind="file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with _signals_deferred():  # a Ctrl-C between mkstemp and the assignment would leak the file
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=path.suffix)
            tmp = Path(name)  # the suffix: writers read it
            os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp (and some writers, e.g. safetensors) make 0600
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if tmp is not None:
            with _signals_deferred():
                tmp.unlink(missing_ok=True)
        raise
    return path
