"""What photocluster wrote in an export, file by file, so that a file changed since is
told apart from one of ours: a changed file is the user's, never replaced or deleted.

A stamp is ``f:<size>:<mtime_ns>:<sha256>`` for a file (the hash may be empty: a
hardlink, whose original the export never reads) or ``l:<target>`` for a symlink. A file
is still ours when its size and mtime are the stamp's; when only its mtime differs
(touched, restored from a backup), when its content hash is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat

# Why a file of the export was left as it is.
EDITED = "kept: changed since photocluster wrote it, so it is yours now (never replaced or deleted)"
# ... an entry an older photocluster wrote, which has no stamp.
UNSTAMPED = "kept: differs from its original, and an older photocluster wrote no record to tell your edit apart"

# The stamp of what an export killed half-way claimed (its journal): ours, content unknown.
CLAIMED = "claimed"

_CHUNK = 1 << 20


def file_hash(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stamp(path: str | os.PathLike[str], sha: str | None = None) -> str | None:
    """The stamp of what is at ``path`` now (``sha``: its content hash when known, "" for
    none; None: read the file for it); None when there is nothing, or not a file or link."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return "l:" + os.readlink(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        return f"f:{st.st_size}:{st.st_mtime_ns}:{file_hash(path) if sha is None else sha}"
    except OSError:
        return None


def still_ours(path: str | os.PathLike[str], recorded: str) -> bool:
    """Whether what is at ``path`` is what photocluster wrote there (``recorded``: its stamp).
    Nothing there counts as ours (nothing of the user's to keep)."""
    if recorded == CLAIMED:
        return True
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if recorded.startswith("l:"):
            return stat.S_ISLNK(st.st_mode) and os.readlink(path) == recorded[2:]
        kind, size, mtime, sha = recorded.split(":", 3)
        if kind != "f" or not stat.S_ISREG(st.st_mode) or st.st_size != int(size):
            return False
        if st.st_mtime_ns == int(mtime):
            return True
        return bool(sha) and file_hash(path) == sha
    except (OSError, ValueError):
        return False


def same_size_and_mtime(path: str | os.PathLike[str], recorded: str) -> bool:
    """Whether ``recorded`` is a file stamp whose size and mtime the file at ``path`` has:
    the stamp stands without reading the file again."""
    try:
        kind, size, mtime, _sha = recorded.split(":", 3)
        st = os.lstat(path)
        return kind == "f" and stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (int(size), int(mtime))
    except (OSError, ValueError):
        return False


def stat_matches(st: os.stat_result, recorded: str) -> bool:
    """Whether ``st`` (an ``lstat``) is of a regular file with the size and mtime of the file
    stamp ``recorded``: the file is as photocluster wrote it, without reading it."""
    if not recorded.startswith("f:") or not stat.S_ISREG(st.st_mode):
        return False
    try:
        _kind, size, mtime, _sha = recorded.split(":", 3)
        return (st.st_size, st.st_mtime_ns) == (int(size), int(mtime))
    except ValueError:
        return False


def copy_hashed(source: str | os.PathLike[str], entry: str | os.PathLike[str]) -> str:
    """Copy ``source`` to ``entry`` with its times (as ``shutil.copy2``), hashing what is
    written on the way (the photo is read once); returns the entry's stamp."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(entry, "wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    shutil.copystat(source, entry)
    return stamp(entry, digest.hexdigest()) or ""
