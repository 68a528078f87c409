"""Writing files so that a reader never sees half of one, and naming a file by its bytes.

Every layer that writes or fingerprints a file uses these two, so a crash mid-write and a
photo's identity mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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
    """SHA-256 of the file's bytes, as hex. Raises OSError when it cannot be read."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
