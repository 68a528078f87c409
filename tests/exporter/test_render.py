"""The renderer: a person as plain data and back, and the rendering process's failures."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from photocluster.core.errors import ExportError
from photocluster.core.readmodel import Summary
from photocluster.core.types import Box, Person, PersonFace
from photocluster.exporter.render import CopyJob, PersonJob, Renderer, RendererProcess

ODD = Path(os.fsdecode(b"/photos/caf\xe9/IMG_1.jpg"))  # not UTF-8: must round-trip exactly


def person(pid: int | None = 3) -> Person:
    faces = (
        PersonFace(1, 10, ODD, Box(1.0, 2.0, 30.5, 40.0), 0.99, 0.25),
        PersonFace(2, 11, Path("/photos/b.jpg"), Box(5.0, 6.0, 50.0, 60.0), 0.5, math.nan),
    )
    return Person(pid, "Zoë" if pid else None, faces, ignored=False)


def job(p: Person, dest: Path) -> PersonJob:
    entries = {1: "Zoë/IMG_1.jpg", 2: "Zoë/b.jpg"}
    pages = {"pages/person-3.html": True} if p.id else {"pages/unknown.html": True}
    return PersonJob.of(
        p, "Zoë", entries=entries, thumbs={1: ".thumbs/ab/1_ab.jpg"}, chips={}, missing=set(), pages=pages
    )


def test_a_person_travels_as_plain_data_and_comes_back_the_same() -> None:
    p = person()
    back = job(p, Path("/x")).person()
    assert (back.id, back.name, back.ignored) == (p.id, p.name, p.ignored)
    for a, b in zip(back.faces, p.faces, strict=True):
        assert (a.face_id, a.photo_id, a.photo_path, a.box, a.confidence) == (
            b.face_id, b.photo_id, b.photo_path, b.box, b.confidence,
        )  # fmt: skip
        assert a.distance == b.distance or (math.isnan(a.distance) and math.isnan(b.distance))


@pytest.mark.parametrize("in_process", [True, False])
def test_both_renderers_write_the_same_index_and_pages(tmp_path: Path, in_process: bool) -> None:
    dest = tmp_path / "out"
    (dest / "pages").mkdir(parents=True)
    kind = Renderer if in_process else RendererProcess
    renderer = kind(str(dest), Summary(1, 2, 2, 0), "0.6", "2")
    renderer.person(job(person(), dest))
    renderer.person(job(person(None), dest))
    written, warnings, _blocks = renderer.close()
    assert sorted(written) == ["pages/person-3.html", "pages/unknown.html"] and list(warnings) == []
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    assert [f["photo"] for f in index["persons"][0]["faces"]] == [os.fsdecode(ODD), "/photos/b.jpg"]
    assert [f["thumbnail"] for f in index["unknown"]["faces"]] == [".thumbs/ab/1_ab.jpg", None]
    assert 'data-face-id="1"' in (dest / "pages" / "person-3.html").read_text(encoding="utf-8")


def test_a_rendering_process_that_dies_is_one_export_error(tmp_path: Path) -> None:
    renderer = RendererProcess(str(tmp_path), Summary(0, 0, 0, 0), None, None)
    renderer._process.kill()  # as the OOM killer would
    renderer._process.wait()
    with pytest.raises(ExportError, match="cannot write the export's pages"):
        for _ in range(1000):  # until the pipe tells
            renderer.person(job(person(), tmp_path))
        renderer.close()
    assert not (tmp_path / "index.json").exists()


@pytest.mark.parametrize("in_process", [True, False])
def test_blocks_copied_from_the_last_index_give_the_same_index(tmp_path: Path, in_process: bool) -> None:
    dest = tmp_path / "out"
    (dest / "pages").mkdir(parents=True)
    first = Renderer(str(dest), Summary(1, 2, 2, 0), "0.6", "2")
    first.person(job(person(), dest))
    first.person(job(person(None), dest))
    _, _, blocks = first.close()
    before = (dest / "index.json").read_bytes()
    kind = Renderer if in_process else RendererProcess
    again = kind(str(dest), Summary(1, 2, 2, 0), "0.6", "2")
    again.person(CopyJob(3, blocks[3]))
    again.person(CopyJob(None, blocks[None], "Zoë"))
    written, _, blocks_again = again.close()
    assert written == [] and blocks_again == blocks
    assert (dest / "index.json").read_bytes() == before
