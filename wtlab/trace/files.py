"""Files people can share: atomic writes that respect the umask.

Every file wtlab writes goes through here. What a caller may rely on:

* **Atomic**: the content goes to a temporary file in the target's own folder (its name
  starts with a dot, so dataset readers skip it), is flushed and ``fsync``-ed, then
  ``os.replace``-d onto the target, and the folder is ``fsync``-ed. A reader sees the
  old file or the new one, never half of one; an error leaves no temporary file and
  the old file untouched.
* **Ordinary modes**: the temporary file is created with mode ``0o666`` (``mode=``
  to ask for another) and the process umask applies, as for any ``open(path, "w")``:
  0644 under the usual umask 022, 0600 under 077. Only private keys ask for ``0o600``.

Nothing here imports more than the standard library, so any layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

DATA_MODE = 0o666  # before the umask: 0644 under umask 022
PRIVATE_MODE = 0o600


def _temp_beside(target: Path, suffix: str, mode: int) -> Path:
    """Create (O_EXCL) an empty temporary file next to ``target`` with ``mode`` & ~umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, flags, mode)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {target}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp",
                mode: int = DATA_MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    For writers that open the file themselves (pyarrow, pandas): they truncate the
    temporary file, which keeps its mode. Parent folders are created (mode 0o777 less
    the umask).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(target, suffix, mode)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, suffix: str = ".tmp",
                file_mode: int = DATA_MODE, **open_args: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (``"w"`` or ``"wb"``); on a clean
    exit it is flushed, fsync-ed and moved onto ``path``. For streaming writers."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), not {mode!r}")
    with atomic_path(path, suffix=suffix, mode=file_mode) as tmp, \
            open(tmp, mode, **open_args) as fh:
        yield fh


def write_bytes(path: str | os.PathLike, data: bytes, *, mode: int = DATA_MODE) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb", file_mode=mode) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, mode: int = DATA_MODE) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"), mode=mode)
