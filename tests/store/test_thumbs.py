"""The face_thumbs table: stored with a scan's faces, replaced, dropped with the face or a
new box, and the faces that still need one streamed by photo."""

from __future__ import annotations

from pathlib import Path

from conftest import fake_embedding, make_face
from photocluster.core.types import Box
from photocluster.store import Store

P = "128/0.3/85"


def save(
    store: Store, path: Path, n: int, thumbs: list[bytes] | None = None, keep: list[int | None] | None = None
) -> tuple[int, list[int]]:
    scan = store.begin_scan([path.parent], "k")
    faces = [make_face(fake_embedding(f"{path.name}{k}"), (10 + 40 * k, 10, 40 + 40 * k, 40)) for k in range(n)]
    pid = store.save_photo(
        path, 1, 1, path.name, scan, "k", width=100, height=100, faces=faces,
        keep=keep or [], thumbnails=thumbs or [], thumb_params=P,
    )  # fmt: skip
    return pid, [f.id for f in store.photo_faces(pid) if f.id is not None]


def test_scan_thumbnails_are_stored_and_read_back(store: Store, tmp_path: Path) -> None:
    _, (a, b) = save(store, tmp_path / "a.jpg", 2, [b"A", b"B"])
    assert store.thumbnails([a, b, 999], P) == {a: b"A", b: b"B"}
    assert store.thumbnail(a, P) == b"A" and store.thumbnail(a, "other") is None
    assert store.thumbnail_count() == 2 and store.thumbnail_count("other") == 0
    assert store.missing_thumbnails(P) == [] and store.missing_thumbnail_photos(P) == 0


def test_missing_thumbnails_stream_by_photo_and_params(store: Store, tmp_path: Path) -> None:
    p1, (a, b) = save(store, tmp_path / "a.jpg", 2)
    p2, _ = save(store, tmp_path / "b.jpg", 1, [b"C"])
    missing = [(photo.id, [f for f, _ in faces]) for photo, faces in store.missing_thumbnails(P)]
    assert missing == [(p1, [a, b])] and store.missing_thumbnail_photos(P) == 1
    assert store.missing_thumbnails(P)[0][1][0][1] == Box(10, 10, 40, 40)
    # Cut with other parameters: every face needs one. Paged by photo, never splitting one.
    other = "64/0.3/85"
    assert [photo.id for photo, _ in store.missing_thumbnails(other)] == [p1, p2]
    first = store.missing_thumbnails(other, photos=1)
    assert [(ph.id, len(fs)) for ph, fs in first] == [(p1, 2)]
    assert [ph.id for ph, _ in store.missing_thumbnails(other, after_photo=p1, photos=1)] == [p2]
    assert store.missing_thumbnails(other, after_photo=p2) == []
    assert store.put_thumbnails([(a, P, b"A"), (b, P, b"B"), (12345, P, b"gone")]) == 2
    assert store.missing_thumbnails(P) == [] and store.thumbnail_count() == 3


def test_a_face_found_again_or_deleted_loses_its_thumbnail(store: Store, tmp_path: Path) -> None:
    _, (a, b) = save(store, tmp_path / "a.jpg", 2, [b"A", b"B"])
    # Re-analysed: the first face continues (new box, no thumbnail given), the second goes.
    _, faces = save(store, tmp_path / "a.jpg", 1, keep=[a])
    assert faces == [a] and store.thumbnails([a, b], P) == {}
    _, faces = save(store, tmp_path / "a.jpg", 1, [b"A2"], keep=[a])
    assert store.thumbnails([a], P) == {a: b"A2"}
    with store.transaction() as conn:
        conn.execute("DELETE FROM faces WHERE id = ?", (a,))
    assert store.thumbnail_count() == 0


def test_metadata_refresh_drops_the_photos_thumbnails(store: Store, tmp_path: Path) -> None:
    pid, (a,) = save(store, tmp_path / "a.jpg", 1, [b"A"])
    store.refresh_photo(pid, 2, 2, "sha", None, None, store.begin_scan([tmp_path], "k"))
    assert store.thumbnails([a], P) == {}


def test_a_thumbnail_cut_for_an_old_box_is_not_stored(store: Store, tmp_path: Path) -> None:
    _, (a, b) = save(store, tmp_path / "a.jpg", 2)
    cut_for = {a: Box(10, 10, 40, 40), b: Box(50, 10, 80, 40)}  # b's box is what it was
    with store.transaction() as conn:  # a scan re-found b elsewhere while the thumbnails were cut
        conn.execute("UPDATE faces SET left = 0, right = 30 WHERE id = ?", (b,))
    assert store.put_thumbnails([(a, P, b"A"), (b, P, b"B")], cut_for) == 1
    assert store.thumbnails([a, b], P) == {a: b"A"}
