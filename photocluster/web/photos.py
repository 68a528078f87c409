"""The review app's only way to a photo's bytes: the regular file that was scanned, or nothing.

A stored path is only where the photo was: by now it may be a symlink to ``/etc/passwd``,
a FIFO that no one writes (an ``open()`` that never returns, and the app with it), a
device, or another photo. :func:`read_scanned` opens it without following a symlink and
without blocking, checks on the open file that it is a regular file of the size and
modification time the scan stored, and reads it from that same open file (no second
look-up by name that could be swapped in between).
"""

from __future__ import annotations

import mimetypes
import os
import stat

from photocluster.core.types import Photo

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_CHUNK = 1 << 20


def read_scanned(photo: Photo) -> bytes | None:
    """The bytes of ``photo`` if its path is still the regular file the scan saw (same size
    and modification time), else None (gone, replaced, a symlink, a FIFO, a device)."""
    try:
        fd = os.open(photo.path, _FLAGS)
    except OSError:  # gone, unreadable, or a symlink (ELOOP)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (photo.size, photo.mtime_ns):
            return None
        parts: list[bytes] = []
        left = st.st_size
        while left > 0:
            part = os.read(fd, min(left, _CHUNK))
            if not part:  # shortened while read
                return None
            parts.append(part)
            left -= len(part)
        return b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def media_type(photo: Photo) -> str:
    """An image type for the photo's name; anything else is served as bytes, never as a page."""
    guessed, _ = mimetypes.guess_type(os.fsdecode(photo.path.name))
    return (
        guessed
        if guessed is not None and guessed.startswith("image/") and "svg" not in guessed
        else ("application/octet-stream")
    )
