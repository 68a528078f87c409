"""A photo analysed again keeps its faces' ids, persons and corrections (fake embedder).

The fake embedder finds one face per photo, in the middle half of the image, described by
the photo's mean colour: a photo redrawn in a close colour is "the same face", one redrawn
in another colour is a different face.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FakeEmbedder, write_photo
from photocluster.app.corrections import move_face, name_person, remove_face
from photocluster.app.recluster import recluster
from photocluster.app.scan import ScanEvent, scan
from photocluster.core.config import DetectionSettings
from photocluster.core.progress import Progress
from photocluster.store import Store


def exiftool(*args: str | Path) -> None:
    tool = shutil.which("exiftool")
    if tool is None:
        pytest.fail("exiftool not found: apt-get install -y libimage-exiftool-perl (.ci/run does this)")
    subprocess.run([tool, "-q", "-overwrite_original", *map(str, args)], check=True)


@pytest.fixture
def corrected(store: Store, tmp_path: Path, fake_embedder: FakeEmbedder) -> dict[str, int]:
    """Three red photos (one person, named Ann), three blue ones (another person); a blue
    face moved into Ann, a red one removed from her."""
    lib = tmp_path / "lib"
    for k in range(3):
        write_photo(lib / f"red{k}.jpg", (200, 20, 40 + 4 * k))
    for k in range(3):
        write_photo(lib / f"blue{k}.jpg", (20, 20, 200 + 4 * k))
    scan(store, [lib])
    recluster(store, 0.6, 2, method="whispers")
    ids = {f.photo_path.stem: f.id for f, _ in store.faces()}
    ann = store.face_persons()[ids["red0"]]
    name_person(store, str(ann), "Ann")
    move_face(store, ids["blue0"], str(ann))
    remove_face(store, ids["red2"])
    return {**ids, "ann": ann}


def state(store: Store) -> tuple[dict[int, int], dict[int, int], list[tuple[int, int]], dict[int, str | None]]:
    return store.face_persons(), store.pins(), sorted(store.rejections()), store.person_names()


def test_a_metadata_edit_is_not_analysed_again_and_keeps_everything(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, corrected: dict[str, int]
) -> None:
    before = state(store)
    calls = fake_embedder.calls
    moved = tmp_path / "lib" / "blue0.jpg"
    exiftool("-Keywords=family", "-DateTimeOriginal=2021:07:04 15:30:09", moved)
    report = scan(store, [tmp_path / "lib"])
    assert (report.analysed, report.metadata_only, report.unchanged, report.faces_lost) == (0, 1, 5, 0)
    assert fake_embedder.calls == calls
    known = store.photo_by_path(moved)
    assert known is not None and known[0].taken_at == "2021-07-04T15:30:09"
    assert known[0].size == moved.stat().st_size
    assert state(store) == before
    recluster(store, 0.6, 2, method="whispers")
    assert state(store) == before
    # Unchanged since: the next scan reads nothing.
    assert scan(store, [tmp_path / "lib"]).unchanged == 6


@pytest.mark.parametrize("change", ["pixels", "settings", "retry"])
def test_a_photo_analysed_again_keeps_its_faces_ids_persons_and_corrections(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, corrected: dict[str, int], change: str
) -> None:
    before = state(store)
    lib = tmp_path / "lib"
    settings = DetectionSettings()
    if change == "pixels":
        # The moved face, the removed one, a named one: redrawn a shade off.
        for name, colour in (("blue0", (22, 21, 202)), ("red2", (201, 21, 47)), ("red0", (201, 21, 41))):
            write_photo(lib / f"{name}.jpg", colour, quality=80)
    elif change == "settings":
        settings = DetectionSettings(max_size=800)
    else:
        (lib / "blue0.jpg").rename(tmp_path / "aside.jpg")
        (lib / "blue0.jpg").write_bytes(b"not yet copied")
        assert scan(store, [lib]).errors
        assert corrected["blue0"] not in store.active_faces()[0].tolist()
        (tmp_path / "aside.jpg").rename(lib / "blue0.jpg")
    report = scan(store, [lib], settings, retry_errors=change == "retry")
    expected = {"pixels": 3, "settings": 6, "retry": 1}[change]
    assert (report.analysed, report.faces_kept, report.faces_lost) == (expected, expected, 0)
    assert state(store) == before
    recluster(store, 0.6, 2, method="whispers")
    assert state(store) == before


def test_a_face_not_found_again_is_reported_and_its_named_person_stays_listed(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, corrected: dict[str, int]
) -> None:
    lib = tmp_path / "lib"
    # Ann's faces become other people: the two red photos and the moved blue one.
    for name, colour in (("red0", (20, 200, 20)), ("red1", (20, 200, 24)), ("blue0", (120, 120, 120))):
        write_photo(lib / f"{name}.jpg", colour)
    events: list[Progress] = []
    report = scan(store, [lib], progress=events.append)
    assert (report.analysed, report.faces_kept, report.faces_lost) == (3, 0, 3)
    lost = sorted((f.face_id, f.person_id, f.name, f.corrected) for f in report.lost)
    ann = corrected["ann"]
    # All three were Ann's when she was named (her anchor) or moved to her: corrected.
    assert lost == sorted(
        [
            (corrected["red0"], ann, "Ann", True),
            (corrected["red1"], ann, "Ann", True),
            (corrected["blue0"], ann, "Ann", True),
        ]
    )
    told = [e.item for e in events if isinstance(e.item, ScanEvent)]
    assert sorted(f.face_id for e in told for f in e.lost) == sorted(f[0] for f in lost)
    assert report.as_dict()["faces_lost"] == 3
    assert "face {} (Ann, corrected) was not found again".format(corrected["blue0"]) in [
        f.describe() for f in report.lost
    ]
    recluster(store, 0.6, 2, method="whispers")
    # The name stays, listed with no face, and the removed face's rejection too.
    assert store.person_names()[ann] == "Ann"
    assert (ann, "Ann", 0, 0, None, False) in store.person_summaries()
    assert store.rejections() == [(corrected["red2"], ann)]


def test_a_corrected_unnamed_person_is_never_deleted_for_having_no_face(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder, corrected: dict[str, int]
) -> None:
    with store.transaction() as conn:
        bob = store.create_person(conn)
    move_face(store, corrected["blue1"], str(bob))  # Bob is corrected now (and unnamed)
    write_photo(tmp_path / "lib" / "blue1.jpg", (120, 120, 120))
    report = scan(store, [tmp_path / "lib"])
    assert report.faces_lost == 1
    recluster(store, 0.6, 2, method="whispers")
    assert bob in store.person_names()
    assert (bob, None, 0, 0, None, False) in store.person_summaries()


def test_a_rescan_settles_each_folder_by_stat_and_still_sees_a_changed_file(
    store: Store, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    """Unchanged files are settled by one query per folder (issue 26); folders whose names
    share a prefix ("a", "a b", "a0", "a/a") keep their files apart, and a file rewritten
    in any of them is analysed again."""
    lib = tmp_path / "lib"
    folders = ["a", "a b", "a0", "a/a", "b"]
    for k, name in enumerate(folders):
        write_photo(lib / name / "p.jpg", (200, 20 + 30 * k, 40))
        write_photo(lib / name / "q.jpg", (20, 200, 40 + 30 * k))
    first = scan(store, [lib])
    assert (first.analysed, first.unchanged) == (10, 0)
    calls = fake_embedder.calls
    again = scan(store, [lib])
    assert (again.analysed, again.unchanged, again.missing, fake_embedder.calls) == (0, 10, 0, calls)
    write_photo(lib / "a" / "a" / "p.jpg", (20, 20, 220))  # another picture in the nested folder
    (lib / "a0" / "q.jpg").unlink()
    third = scan(store, [lib])
    assert (third.analysed, third.unchanged, third.missing) == (1, 8, 1)
    assert fake_embedder.calls == calls + 1
