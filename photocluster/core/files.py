"""Writing files so that a reader never sees half of one, naming a file by its bytes, and
reading files that anyone may have put there (a FIFO, a link to /dev/zero, a huge file).

Every layer that writes, fingerprints or reads a file a person gave uses these, so a crash
mid-write, a photo's identity and a hostile file mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _default_mode() -> int:
    # The mode open() would give a new file: os.umask is the only way to read the umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, data: str | bytes | Iterable[str], *, keep_mode: bool = False) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8; an iterable of texts is
    written as it comes, never held whole) in one step: a crash leaves the old file or
    the new one, never a mix, and no temporary file behind.

    The file gets the permissions a newly created file would (mkstemp's 0600 would
    hide an export from other readers); ``keep_mode`` keeps those of the file it
    replaces instead, for files that are the user's (sidecars beside the originals).
    """
    mode = None
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o7777
    # In the same folder, so os.replace is a rename within one file system.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, str | bytes):
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                for chunk in data:
                    fh.write(chunk.encode("utf-8"))
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes, as hex. Raises OSError when it cannot be read
    (:class:`RefusedFileError` when it is not a regular file)."""
    with open_regular(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- reading files a person (or anyone) put there ------------------------------------------

# What a file beside a photo (an XMP sidecar, a Takeout JSON, a Picasa file) may weigh: a
# sidecar of a photo with a hundred named faces is about 100 KB.
SIDE_FILE_MAX_BYTES = 16 * 1024 * 1024

_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class RefusedFileError(OSError):
    """A file that is not a regular file (a FIFO, a device, a socket, a folder, or a symlink
    to one), or one over the size allowed: refused before anything is read from it. The
    message is the one-line reason."""


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a FIFO", "a character device", ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def open_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> io.BufferedReader:
    """Open ``path`` for reading only if it is a regular file (a symlink to one is fine) of
    at most ``max_bytes``: never blocks on a FIFO, never opens a device or a socket. The
    file is checked before it is opened and again on the open descriptor (it may have been
    replaced in between). Raises :class:`RefusedFileError` with the reason, or the OSError
    of the file system."""
    st = os.stat(path)
    _check(st.st_mode, st.st_size, max_bytes)  # so a device is never opened
    # O_NONBLOCK: a FIFO put in its place since the check opens without waiting for a writer.
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        _check(st.st_mode, st.st_size, max_bytes)
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check(mode: int, size: int, max_bytes: int | None) -> None:
    if stat.S_ISDIR(mode):
        raise RefusedFileError("is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise RefusedFileError(f"not a regular file ({file_kind(mode)})")
    if max_bytes is not None and size > max_bytes:
        raise RefusedFileError(f"too large ({_megabytes(size)}; the limit is {_megabytes(max_bytes)})")


def read_regular(path: str | os.PathLike[str], max_bytes: int = SIDE_FILE_MAX_BYTES) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes`` (see :func:`open_regular`);
    never more than ``max_bytes`` are read, even from a file that grows while it is read."""
    with open_regular(path, max_bytes) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RefusedFileError(f"too large (it grew past the limit of {_megabytes(max_bytes)})")
    return data
