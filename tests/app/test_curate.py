"""Curation on fake embeddings: faces drawn by the user, split, cover, the confirm queue,
name search; each one correction that undo reverts and later runs respect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import colour_library, fake_embedding, make_face, near
from photocluster.app import browse, curate
from photocluster.app.corrections import history, merge_persons, name_person, undo
from photocluster.app.recluster import recluster
from photocluster.core.errors import NameTakenError, NotFoundError, UsageError
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage
from photocluster.detect.thumbnail import THUMB_PARAMS
from photocluster.grouping.quality import face_quality
from photocluster.store import Store


@pytest.fixture
def library(store: Store, tmp_path: Path) -> dict[str, list[int]]:
    """Alice (4 faces), Bob (3), Carol (2) and a stranger's face in no person."""
    colour_library(store, tmp_path / "photos")
    recluster(store, threshold=0.6, min_size=2)
    out: dict[str, list[int]] = {}
    for face, _ in store.faces():
        out.setdefault(re.sub(r"\d+\.jpg$", "", face.photo_path.name), []).append(face.id)
    return out


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Box, float]]:
    """The models' part of add_face faked: the descriptor of a drawn box is a fake one; the
    boxes (in decoded pixels' photo coordinates) and decoding scales asked for are listed."""
    asked: list[tuple[Box, float]] = []

    def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
        asked.append((box, image.scale))
        face = make_face(near(fake_embedding("alice"), 0.2, f"drawn{len(asked)}"), (0, 0, 48, 48))
        return Face(box=box, confidence=0.0, landmarks=face.landmarks, embedding=face.embedding)

    monkeypatch.setattr(faces_module, "embed_box", embed_box)
    return asked


def person_of(store: Store, face_id: int) -> int | None:
    row = store.face_row(face_id)
    return None if row is None else row[1]


def photo_of(store: Store, face_id: int) -> Any:
    return store.face_rows([face_id])[face_id].photo


def test_a_drawn_face_is_stored_flagged_pinned_and_undone(
    store: Store, library: dict[str, list[int]], drawn: list[tuple[Box, float]]
) -> None:
    photo = photo_of(store, library["stranger"][0])
    alice = person_of(store, library["alice"][0])
    added = curate.add_face(store, photo.path, Box(0, 0, 30, 30), person=str(alice))
    # Decoded as its scan decoded it: "upauto" enlarges this 96-pixel photo twice.
    assert drawn == [(Box(0, 0, 30, 30), 2.0)]
    assert added.person_id == alice and store.added_faces(photo.id) == {added.face_id}
    assert store.pins()[added.face_id] == alice
    assert store.thumbnail(added.face_id, THUMB_PARAMS) is not None
    (face,) = [f for f in store.photo_faces(photo.id) if f.id == added.face_id]
    assert face.confidence == curate.ADDED_CONFIDENCE  # the user vouches: not a weak detection
    assert history(store)[0]["command"] == f"add-face {photo.id} 0,0,30,30 {alice}"
    # A later clustering keeps it in Alice (pinned), and exports list it with the others.
    recluster(store, threshold=0.6, min_size=2)
    assert person_of(store, added.face_id) == alice
    assert added.face_id in {f.id for f, _ in store.faces()}
    assert undo(store).startswith("add-face")
    assert store.face_row(added.face_id) is None and store.added_faces() == set()


def test_a_drawn_face_for_a_new_name_makes_the_person_and_undo_takes_both(
    store: Store, library: dict[str, list[int]], drawn: list[tuple[Box, float]]
) -> None:
    photo = photo_of(store, library["stranger"][0])
    added = curate.add_face(store, photo.id, Box(60, 60, 200, 200), person="Dora")  # clipped to the photo
    assert added.box == Box(60, 60, 96, 96)
    assert added.person_id is not None and store.person_names()[added.person_id] == "Dora"
    undo(store)
    assert store.face_row(added.face_id) is None and not store.person_exists(added.person_id)


def test_a_drawn_face_is_refused_where_a_face_is_or_too_small_or_off_the_photo(
    store: Store, library: dict[str, list[int]], drawn: list[tuple[Box, float]], tmp_path: Path
) -> None:
    face_id = library["bob"][0]
    photo = photo_of(store, face_id)
    with pytest.raises(UsageError, match=f"face {face_id} is there already"):
        curate.add_face(store, photo.path, Box(25, 25, 70, 70))
    with pytest.raises(UsageError, match="under 12 pixels"):
        curate.add_face(store, photo.path, Box(90, 90, 140, 140))
    with pytest.raises(NotFoundError, match="not scanned yet"):
        curate.add_face(store, tmp_path / "elsewhere.jpg", Box(0, 0, 30, 30))
    with pytest.raises(UsageError, match="four numbers"):
        curate.parse_box("1,2,3")
    assert drawn == [] and history(store) == []


def test_a_rescan_keeps_the_drawn_face_and_loses_it_from_no_count(
    store: Store, library: dict[str, list[int]], drawn: list[tuple[Box, float]]
) -> None:
    face_id = library["carol"][0]
    photo = photo_of(store, face_id)
    added = curate.add_face(store, photo.path, Box(0, 0, 20, 20))
    # The photo analysed again (new pixels, or new settings): the detector finds no face now.
    scan_id = store.begin_scan([photo.path.parent], "cnn/max1024/up1/v2")
    store.save_photo(photo.path, photo.size, photo.mtime_ns, "sha-new", scan_id, "k", width=96, height=96)
    assert {f.id for f in store.photo_faces(photo.id)} == {added.face_id}
    # ... and again, finding the old face: the drawn one is still there, beside it.
    again = make_face(near(fake_embedding("carol"), 0.2, "again"), (24, 24, 72, 72))
    store.save_photo(photo.path, photo.size, photo.mtime_ns, "sha-2", scan_id, "k", width=96, height=96, faces=[again])
    assert len(store.photo_faces(photo.id)) == 2 and added.face_id in {f.id for f in store.photo_faces(photo.id)}


def test_the_scan_keeps_drawn_faces_and_does_not_report_them_lost(
    store: Store, tmp_path: Path, fake_embedder: Any, drawn: list[tuple[Box, float]]
) -> None:
    from conftest import write_photo
    from photocluster.app.scan import scan

    photo = write_photo(tmp_path / "p" / "one.jpg", (200, 40, 40), size=(120, 90))
    scan(store, [tmp_path / "p"], workers=1)
    added = curate.add_face(store, photo, Box(0, 0, 25, 25))
    write_photo(photo, (40, 40, 200), size=(120, 90))  # new pixels: analysed again
    report = scan(store, [tmp_path / "p"], workers=1)
    assert report.faces_lost == 1 and [lost.face_id for lost in report.lost] == []
    assert added.face_id in {f.id for f in store.photo_faces(store.photo_by_path(photo)[0].id)}  # type: ignore[index]


def test_split_makes_a_new_person_kept_apart_until_merged_and_undo_restores(
    store: Store, library: dict[str, list[int]]
) -> None:
    alice_faces = library["alice"]
    alice = person_of(store, alice_faces[0])
    assert alice is not None
    done = curate.split_person(store, str(alice), alice_faces[2:], name="Alicia")
    new = done.person_id
    assert new is not None and store.person_names()[new] == "Alicia"
    assert [person_of(store, f) for f in alice_faces] == [alice, alice, new, new]
    assert history(store)[0]["command"] == f"split {alice} {alice_faces[2]} {alice_faces[3]} 'Alicia'"
    # Their faces are 0.2 from one centre: a clustering would make them one; the split holds.
    recluster(store, threshold=0.6, min_size=2)
    assert [person_of(store, f) for f in alice_faces] == [alice, alice, new, new]
    assert (alice, new) in store.kept_apart()
    # Merged again, they are one for good.
    merge_persons(store, str(alice), [str(new)])
    recluster(store, threshold=0.6, min_size=2)
    assert {person_of(store, f) for f in alice_faces} == {alice}
    undo(store)  # the merge
    undo(store)  # the split
    assert {person_of(store, f) for f in alice_faces} == {alice} and not store.person_exists(new)
    assert store.pins() == {} and store.rejections() == []


def test_split_refuses_all_or_none_or_strangers_or_a_taken_name(store: Store, library: dict[str, list[int]]) -> None:
    bob_faces = library["bob"]
    bob = str(person_of(store, bob_faces[0]))
    with pytest.raises(UsageError, match="select the faces"):
        curate.split_person(store, bob, [])
    with pytest.raises(UsageError, match="all the faces"):
        curate.split_person(store, bob, bob_faces)
    with pytest.raises(UsageError, match=f"face {library['alice'][0]} is not in person"):
        curate.split_person(store, bob, [library["alice"][0]])
    name_person(store, library_person(store, library, "alice"), "Ann")
    with pytest.raises(NameTakenError):
        curate.split_person(store, bob, bob_faces[:1], name="ann")


def library_person(store: Store, library: dict[str, list[int]], who: str) -> str:
    return str(person_of(store, library[who][0]))


def test_the_chosen_cover_is_shown_kept_across_runs_and_undone(store: Store, library: dict[str, list[int]]) -> None:
    alice = int(library_person(store, library, "alice"))
    chosen = library["alice"][3]
    card = browse.person_page(store, alice)
    assert card is not None
    before = card[0].cover
    assert before is not None
    curate.choose_cover(store, str(alice), chosen)
    assert history(store)[0]["command"] == f"cover {alice} {chosen}"
    recluster(store, threshold=0.6, min_size=2)
    cards = {c.id: c for c in browse.person_cards(store).items}
    assert cards[alice].cover is not None and cards[alice].cover.id == chosen
    undo(store)
    assert browse.person_cards(store).items[0].cover == before
    with pytest.raises(UsageError, match="not in person"):
        curate.choose_cover(store, str(alice), library["bob"][0])


def test_a_cover_face_that_leaves_the_person_gives_way_to_the_best(store: Store, library: dict[str, list[int]]) -> None:
    alice = library_person(store, library, "alice")
    curate.choose_cover(store, alice, library["alice"][1])
    from photocluster.app.corrections import remove_face

    remove_face(store, library["alice"][1])
    page = browse.person_page(store, int(alice))
    assert page is not None and page[0].cover is not None and page[0].cover.id != library["alice"][1]


def test_face_quality_prefers_a_frontal_large_confident_face() -> None:
    def points(nose_x: float) -> np.ndarray:
        return np.array([[70, 40], [60, 40], [30, 40], [40, 40], [nose_x, 60]], dtype=np.float32)

    boxes = np.array([[0, 0, 200, 200]] * 4 + [[0, 0, 30, 30]], dtype=np.float64)
    conf = np.array([1.0, 1.0, 0.2, 1.0, 1.0])
    pts = np.stack([points(50), points(62), points(50), points(38), points(50) * 0.3])
    q = face_quality(boxes, conf, pts)
    assert q[0] == pytest.approx(1.0, abs=1e-6)
    assert q[0] > q[2] and q[0] > q[4]  # less confident; smaller
    assert q[1] == pytest.approx(q[3]) and q[1] < 0.6  # turned either way, alike
    assert ((q >= 0) & (q <= 1)).all()


def add_unknown(store: Store, path: Path, embedding: np.ndarray) -> int:
    """A photo with one face, in no person."""
    from conftest import write_photo

    write_photo(path, (10, 10, 10), size=(96, 96))
    st = path.stat()
    scan_id = store.begin_scan([path.parent], "k")
    photo_id = store.save_photo(
        path, st.st_size, st.st_mtime_ns, f"sha-{path.name}", scan_id, "k", width=96, height=96,
        faces=[make_face(embedding, (24, 24, 72, 72))],
    )  # fmt: skip
    return store.photo_faces(photo_id)[0].id


def test_the_confirm_queue_asks_about_likely_faces_and_remembers_the_answers(
    store: Store, library: dict[str, list[int]], tmp_path: Path
) -> None:
    alice = library_person(store, library, "alice")
    centre = fake_embedding("alice")
    close = add_unknown(store, tmp_path / "u" / "close.jpg", near(centre, 0.15, "c"))
    twin = add_unknown(store, tmp_path / "u" / "twin.jpg", near(centre, 0.17, "c"))  # beside `close`
    alone = add_unknown(store, tmp_path / "u" / "alone.jpg", near(centre, 0.45, "far"))
    add_unknown(store, tmp_path / "u" / "other.jpg", fake_embedding("zed"))  # another person's
    queue = curate.confirm_queue(store, int(alice))
    ids = [c.face.id for c in queue]
    assert set(ids) == {close, twin, alone}  # Bob's, Carol's, the stranger's, zed's: too far
    # Answers that carry more faces along come first: `close` and `twin` draw each other in.
    assert ids.index(close) < ids.index(alone) and ids.index(twin) < ids.index(alone)
    assert queue[0].affected == 2 and not queue[0].member

    assert curate.confirm(store, alice, close, yes=True).command == f"confirm {close} {alice}"
    assert person_of(store, close) == int(alice) and store.pins()[close] == int(alice)
    curate.confirm(store, alice, alone, yes=False)
    assert (alone, int(alice)) in store.rejections()
    assert [c.face.id for c in curate.confirm_queue(store, int(alice), skipped={twin})] == []
    # A later clustering keeps both answers; undo takes the "no" back.
    recluster(store, threshold=0.6, min_size=2)
    assert person_of(store, close) == int(alice) and person_of(store, alone) != int(alice)
    assert history(store)[0]["command"] == f"reject {alone} {alice}"
    undo(store)
    assert (alone, int(alice)) not in store.rejections()


def test_the_confirm_queue_asks_about_a_doubtful_member_and_no_takes_it_out(
    store: Store, library: dict[str, list[int]], tmp_path: Path
) -> None:
    bob = library_person(store, library, "bob")
    odd = add_unknown(store, tmp_path / "u" / "odd.jpg", near(fake_embedding("bob"), 0.55, "odd"))
    from photocluster.app.corrections import move_face

    move_face(store, odd, bob)  # pinned: never asked about
    assert odd not in {c.face.id for c in curate.confirm_queue(store, int(bob))}
    undo(store)
    store.assign_faces({odd: int(bob)}, {})  # recognition put it there: asked about
    (asked,) = [c for c in curate.confirm_queue(store, int(bob)) if c.face.id == odd]
    assert asked.member and asked.distance > curate.MEMBER_DOUBT
    curate.confirm(store, bob, odd, yes=False)
    assert person_of(store, odd) is None and (odd, int(bob)) in store.rejections()


def test_search_finds_persons_by_a_prefix_of_their_name_or_a_word_ignoring_case_and_accents(
    store: Store, library: dict[str, list[int]]
) -> None:
    a, b, c = (library_person(store, library, w) for w in ("alice", "bob", "carol"))
    name_person(store, a, "Zoé Martin")
    name_person(store, b, "ZOE Ångström")
    name_person(store, c, "Émile Zola")
    assert curate.search_persons(store, "zoe") == [(int(b), "ZOE Ångström"), (int(a), "Zoé Martin")]  # by name
    assert [p for p, _ in curate.search_persons(store, "ZO")] == [int(b), int(a), int(c)]  # words last
    assert curate.search_persons(store, "angst") == [(int(b), "ZOE Ångström")]
    assert curate.search_persons(store, " emi ") == [(int(c), "Émile Zola")]
    assert curate.search_persons(store, "x") == [] and curate.search_persons(store, "  ") == []
    assert curate.folded("Ǆ Straße") == "dz strasse"
