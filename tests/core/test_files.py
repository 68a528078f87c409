"""Reading a file anyone may have put there: only a regular file, under a cap, never
blocking on a FIFO, never opening a device (real FIFOs, sockets, links to /dev/zero and
/dev/urandom, a sparse file over the cap)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from conftest import sparse_file, without_hanging
from photocluster.core.files import SIDE_FILE_MAX_BYTES, RefusedFileError, file_sha256, read_regular


def hostile(tmp_path: Path) -> dict[str, Path]:
    """A FIFO, a socket, links to two devices, a folder, and a link to a FIFO."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "urandom").symlink_to("/dev/urandom")
    (tmp_path / "to-fifo").symlink_to(fifo)
    (tmp_path / "folder").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "socket"))
    sock.close()
    return {name: tmp_path / name for name in ("fifo", "zero", "urandom", "to-fifo", "folder", "socket")}


REASONS = {
    "fifo": "not a regular file (a FIFO)",
    "to-fifo": "not a regular file (a FIFO)",
    "zero": "not a regular file (a character device)",
    "urandom": "not a regular file (a character device)",
    "socket": "not a regular file (a socket)",
    "folder": "is a folder, not a file",
}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path: Path, name: str) -> None:
    files = hostile(tmp_path)
    for read in (read_regular, file_sha256):
        with pytest.raises(RefusedFileError) as caught:
            without_hanging(lambda: read(files[name]), fifos=[files["fifo"]])  # noqa: B023 - run at once
        assert str(caught.value) == REASONS[name]
        assert isinstance(caught.value, OSError)  # what readers already catch


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = sparse_file(tmp_path / "big.xmp", 150 * 1024 * 1024)
    with pytest.raises(RefusedFileError, match=r"^too large \(150 MB; the limit is 16 MB\)$"):
        read_regular(big)
    with pytest.raises(RefusedFileError, match=r"^too large \(2000 bytes; the limit is 1000 bytes\)$"):
        read_regular(sparse_file(tmp_path / "small", 2000), 1000)


def test_a_regular_file_and_a_link_to_one_are_read_whole_up_to_the_cap(tmp_path: Path) -> None:
    at_cap = sparse_file(tmp_path / "at-cap", SIDE_FILE_MAX_BYTES)
    assert len(read_regular(at_cap)) == SIDE_FILE_MAX_BYTES
    (tmp_path / "text").write_bytes(b"hello")
    (tmp_path / "link").symlink_to(tmp_path / "text")
    assert read_regular(tmp_path / "link") == b"hello"
    assert read_regular(tmp_path / "text", 5) == b"hello"
