"""The tags table: replaced per photo, the pins and rejections it makes, the user's pins kept."""

from __future__ import annotations

from pathlib import Path

from conftest import fake_embedding, make_face
from photocluster.core.types import Box
from photocluster.store import Store
from photocluster.store.tags import NewTag


def photo(store: Store, path: Path, n: int) -> tuple[int, list[int]]:
    scan = store.begin_scan([path.parent], "k")
    pid = store.save_photo(
        path, 1, 1, path.name, scan, "k", width=100, height=100,
        faces=[make_face(fake_embedding(f"{path.name}{k}"), (10 + 40 * k, 10, 40 + 40 * k, 40)) for k in range(n)],
    )  # fmt: skip
    return pid, [f.id for f in store.photo_faces(pid) if f.id is not None]


def tag(name: str, face: int | None, status: str = "matched") -> NewTag:
    return NewTag(name, "mwg", "/x/a.jpg.xmp", Box(1, 2, 3, 4), status, face)


def test_save_tags_replaces_pins_and_keeps_names_apart(store: Store, tmp_path: Path) -> None:
    pid, (a, b) = photo(store, tmp_path / "a.jpg", 2)
    pinned = store.save_tags(pid, [tag("Ann", a), tag("Ben", b), tag("Cy", None, "unmatched")])
    ann, ben = store.persons_named("Ann")[0], store.persons_named("Ben")[0]
    assert pinned == {a: ann, b: ben} and store.pins() == {a: ann, b: ben}
    assert set(store.rejections()) == {(a, ben), (b, ann)}
    assert [(t.name, t.status, t.pinned, t.box) for t in store.photo_tags(pid)] == [
        ("Ann", "matched", ann, Box(1, 2, 3, 4)),
        ("Ben", "matched", ben, Box(1, 2, 3, 4)),
        ("Cy", "unmatched", None, Box(1, 2, 3, 4)),
    ]
    assert store.tagged_photo_ids() == {pid}
    # The same tags again: the same rows, no pin twice.
    store.save_tags(pid, [tag("Ann", a), tag("Ben", b), tag("Cy", None, "unmatched")])
    assert len(store.photo_tags(pid)) == 3 and store.pins() == {a: ann, b: ben}
    # The user's pin elsewhere is kept; a tag no longer there takes its own pin along.
    with store.transaction() as conn:
        dan = store.create_person(conn, "Dan")
        conn.execute("UPDATE pins SET person_id = ? WHERE face_id = ?", (dan, a))
    assert store.save_tags(pid, [tag("Ann", a)]) == {a: None}
    assert store.pins() == {a: dan}
    assert [t.pinned for t in store.photo_tags(pid)] == [None]


def test_present_photos_and_read_keys(store: Store, tmp_path: Path) -> None:
    pid, _ = photo(store, tmp_path / "a.jpg", 1)
    assert store.present_photos([tmp_path / "a.jpg", tmp_path / "b.jpg"]) == {tmp_path / "a.jpg": pid}
    store.save_tag_keys([(pid, "k1")])
    store.save_tag_keys([(pid, "k2")])
    assert store.tag_read_keys() == {pid: "k2"}
