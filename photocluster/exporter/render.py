"""What an export writes of each person that needs none of its decisions: the person's block
of ``index.json`` and its review pages. The export decides (entries placed, thumbnails in
place, pages it may write) and hands each person over as plain data, in order; a
:class:`Renderer` writes it here, or a :class:`RendererProcess` in a second process, so that
at a large library rendering runs on a second core beside the export's own work.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from photocluster.core.errors import ExportError
from photocluster.core.types import Box, Person, PersonFace
from photocluster.exporter import pages, review
from photocluster.exporter.folders import IN_THE_WAY, INDEX_FILE, UNKNOWN_FOLDER, Warnings, warn
from photocluster.exporter.index_json import IndexWriter

# (face id, photo id, photo path, left, top, right, bottom, confidence, distance, day taken or None)
FaceRow = tuple[int, int, str, float, float, float, float, float, float, str | None]


@dataclass(frozen=True)
class PersonJob:
    """One person (or, id None, a chunk of the unknown faces) as the renderer needs it:
    plain data, cheap to send to another process."""

    person_id: int | None
    name: str | None
    ignored: bool
    faces: list[FaceRow]
    folder: str
    entries: Mapping[int, str]  # face id -> photo entry
    thumbs: Mapping[int, str]  # face id -> thumbnail in place
    chips: Mapping[int, str]  # face id -> face chip in place
    missing: set[str]  # photo entries not in place: pages link the original
    pages: Mapping[str, bool | None]  # page file -> whether the export may write it (None: the user's, kept)
    first_page: int = 1
    unknown: int | None = None  # all the unknown faces, for a chunk of them
    born: str | None = None  # the person's birth date (YYYY-MM-DD), if given

    @classmethod
    def of(cls, person: Person, folder: str, **fields: object) -> PersonJob:
        faces: list[FaceRow] = []
        for f in person.faces:
            box = f.box
            faces.append(
                (
                    f.face_id,
                    f.photo_id,
                    os.fspath(f.photo_path),
                    box.left,
                    box.top,
                    box.right,
                    box.bottom,
                    f.confidence,
                    f.distance,
                    f.taken,
                )
            )
        fields.setdefault("born", person.born)
        return cls(person.id, person.name, person.ignored, faces, folder, **fields)  # type: ignore[arg-type]

    def person(self) -> Person:
        paths: dict[str, Path] = {}
        faces = tuple(
            PersonFace(
                fid, pid, paths.get(path) or paths.setdefault(path, Path(path)), Box(a, b, c, d), conf, dist, taken
            )
            for fid, pid, path, a, b, c, d, conf, dist, taken in self.faces
        )
        return Person(self.person_id, self.name, faces, ignored=self.ignored, born=self.born)


@dataclass(frozen=True)
class CopyJob:
    """A person that did not change since the last export (id None: the unknown faces): its
    block of ``index.json`` is copied from ``where`` (offset, length) in the one it replaces;
    its pages are in place."""

    person_id: int | None
    where: tuple[int, int]
    folder: str = UNKNOWN_FOLDER


class Renderer:
    """Writes the index.json blocks and the pages of the persons handed to it, in order."""

    def __init__(
        self,
        dest: str,
        summary: pages.Summary,
        threshold: str | None,
        min_size: str | None,
        write_index: bool = True,
    ) -> None:
        self.dest = dest
        self.summary = summary
        # None: index.json is not written (the user changed it since it was written, and it
        # stays as they left it; or an export with nothing changed leaves it in place).
        self.index = IndexWriter(Path(dest) / INDEX_FILE, threshold, min_size) if write_index else None
        self.written: list[str] = []
        self.warnings = Warnings()

    def person(self, job: PersonJob | CopyJob) -> None:
        if isinstance(job, CopyJob):
            if self.index is not None:
                self.index.copy(job.person_id, job.where, job.folder)
            return
        person = job.person()
        if self.index is not None:
            self.index.person(person, job.folder, job.entries, job.thumbs, job.chips)
        rendered = review.person_pages(
            person, self.summary, job.thumbs, job.entries, job.missing, job.first_page, job.unknown
        )
        for rel, html in rendered:
            allowed = job.pages.get(rel, False)
            if not allowed:
                if allowed is not None:  # None: the user's page, which the export warned of
                    warn(self.warnings, os.path.join(self.dest, rel), IN_THE_WAY)
                continue
            review.write_page(Path(self.dest) / rel, html)
            self.written.append(rel)

    def close(self) -> tuple[list[str], Warnings, dict[int | None, tuple[int, int]]]:
        """Put index.json in place; returns the pages written, the warnings, and where each
        person's block lies in index.json (none when it was not written)."""
        if self.index is None:
            return self.written, self.warnings, {}
        self.index.close()
        return self.written, self.warnings, self.index.blocks

    def abort(self) -> None:
        if self.index is not None:
            self.index.abort()


_CHILD = "from photocluster.exporter.render import main; main()"


class RendererProcess:
    """A :class:`Renderer` in a second Python process, fed through a pipe (which holds the
    export back when the renderer falls behind). Started as a plain ``python -c``, not
    through multiprocessing: that would run the caller's main script again in the child.
    Its failure is raised here, as an ExportError."""

    def __init__(
        self,
        dest: str,
        summary: pages.Summary,
        threshold: str | None,
        min_size: str | None,
        write_index: bool = True,
    ) -> None:
        from_parent, to_child = os.pipe()  # (read end, write end)
        from_child, to_parent = os.pipe()
        # The child imports photocluster from where this process did, whatever its sys.path.
        here = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(from_parent), str(to_parent)],
            pass_fds=(from_parent, to_parent),
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
        )
        os.close(from_parent)
        os.close(to_parent)
        self._send = Connection(to_child, readable=False)
        self._recv = Connection(from_child, writable=False)
        self.dest = dest
        self.person_start = (dest, summary, threshold, min_size, write_index)
        self._call(lambda: self._send.send(self.person_start))

    def person(self, job: PersonJob | CopyJob) -> None:
        self._call(lambda: self._send.send(job))

    def close(self) -> tuple[list[str], Warnings, dict[int | None, tuple[int, int]]]:
        reply = self._call(self._finish)
        self._process.wait()
        if reply[0] != "done":
            raise ExportError(f"{self.dest}: cannot write the export's pages ({reply[1]})")
        warnings = Warnings()
        warnings.extend(reply[2])
        warnings.total = reply[3]
        return reply[1], warnings, reply[4]

    def _finish(self) -> Any:
        self._send.send(None)
        return self._recv.recv()

    def abort(self) -> None:
        self._process.kill()
        self._process.wait()
        IndexWriter.remove_partial(Path(self.dest) / INDEX_FILE)

    def _call(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except (BrokenPipeError, EOFError, ConnectionResetError):
            pass
        reason = "the rendering process stopped without saying why"
        with contextlib.suppress(EOFError, OSError):
            if self._recv.poll(5):
                reply = self._recv.recv()
                reason = str(reply[1]) if reply[0] == "error" else reason
        self._process.wait(5)
        raise ExportError(f"{self.dest}: cannot write the export's pages ({reason})")


def main() -> None:
    """The rendering process: its pipes' descriptors come as arguments."""
    recv = Connection(int(sys.argv[1]), writable=False)
    send = Connection(int(sys.argv[2]), readable=False)
    try:
        start = recv.recv()
    except EOFError:
        return
    _serve(recv, send, *start)


def _serve(
    recv: Connection,
    send: Connection,
    dest: str,
    summary: pages.Summary,
    threshold: str | None,
    min_size: str | None,
    write_index: bool = True,
) -> None:
    """Persons until None, then the pages written and the warnings. A parent that is gone
    (its end of the pipe closed) ends it without index.json."""
    renderer = Renderer(dest, summary, threshold, min_size, write_index)
    try:
        while (job := recv.recv()) is not None:
            renderer.person(job)
        written, warnings, blocks = renderer.close()
        send.send(("done", written, list(warnings), warnings.total, blocks))
    except EOFError:
        renderer.abort()
    except BaseException as exc:  # noqa: BLE001 - reported to the export, which raises it
        renderer.abort()
        text = f"{getattr(exc, 'strerror', None) or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": ")
        with contextlib.suppress(OSError):
            send.send(("error", text))
