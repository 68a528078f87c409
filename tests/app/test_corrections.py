"""Corrections, stable identities, the same-photo rule and recognition, on fake embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import fake_embedding, near
from photocluster.app.corrections import (
    history,
    ignore_person,
    merge_persons,
    move_face,
    name_person,
    remove_face,
    resolve_person,
    undo,
)
from photocluster.app.listing import persons
from photocluster.app.recluster import recluster
from photocluster.app.recognise import assign_new_faces
from photocluster.core.errors import NotFoundError, UsageError
from photocluster.core.progress import Progress
from photocluster.grouping.constraints import is_collage
from photocluster.grouping.constraints import same_photo_pairs as _same_photo_pairs
from photocluster.store import Store

from .conftest import add_photo


def person_of(store: Store, face_id: int) -> int | None:
    return store.face_persons().get(face_id)


def members(store: Store) -> list[set[int]]:
    return sorted(({f.face_id for f in p.faces} for p in persons(store, include_unknown=False)), key=min)


def test_baseline_three_persons(store: Store, people: dict[str, list[int]]) -> None:
    assert members(store) == [set(people["A"]), set(people["B"]), set(people["C"])]


def test_name_survives_reclustering_and_new_faces(store: Store, people: dict[str, list[int]], tmp_path: Path) -> None:
    pid = person_of(store, people["A"][0])
    name_person(store, str(pid), "  Ann   Smith ")
    add_photo(store, tmp_path / "A-new.jpg", [near(fake_embedding("A"), 0.2, "new")])
    report = recluster(store, 0.6, 1, method="whispers")
    assert resolve_person(store, "ann smith") == pid
    (ann,) = [p for p in persons(store) if p.name == "Ann Smith"]
    assert ann.id == pid and len(ann.faces) == 5
    assert report.names_affected == ()


def test_merge_sticks_across_reclustering(store: Store, people: dict[str, list[int]]) -> None:
    b, c = person_of(store, people["B"][0]), person_of(store, people["C"][0])
    name_person(store, str(c), "Cee")
    merge_persons(store, str(b), [str(c)])
    assert members(store) == [set(people["A"]), set(people["B"]) | set(people["C"])]
    recluster(store, 0.6, 1, method="whispers")
    assert members(store) == [set(people["A"]), set(people["B"]) | set(people["C"])]
    (merged,) = [p for p in persons(store) if p.id == b]
    assert merged.name == "Cee"  # the target had no name: it takes the merged one's
    with pytest.raises(NotFoundError):
        resolve_person(store, str(c))


def test_move_and_remove_stick(store: Store, people: dict[str, list[int]]) -> None:
    a, b = person_of(store, people["A"][0]), person_of(store, people["B"][0])
    moved, removed = people["A"][0], people["A"][1]
    move_face(store, moved, str(b))
    remove_face(store, removed)
    assert person_of(store, removed) is None
    for _ in range(2):
        assert person_of(store, moved) == b
        # The removed face never rejoins A (it may join someone else)...
        assert person_of(store, removed) != a
        # ...and moving one face to B did not drag the rest of A along.
        assert {f.face_id for p in persons(store) if p.id == a for f in p.faces} == set(people["A"][2:])
        assert {f.face_id for p in persons(store) if p.id == b for f in p.faces} >= {moved, *people["B"]}
        recluster(store, 0.6, 1, method="whispers")
    with pytest.raises(UsageError, match="already in person"):
        move_face(store, moved, str(b))


def test_ignore_hides_a_person_until_asked(store: Store, people: dict[str, list[int]]) -> None:
    c = person_of(store, people["C"][0])
    ignore_person(store, str(c))
    recluster(store, 0.6, 1, method="whispers")
    assert c not in {p.id for p in persons(store)}
    assert c in {p.id for p in persons(store, include_ignored=True)}
    ignore_person(store, str(c), ignored=False)
    assert c in {p.id for p in persons(store)}


def test_undo_reverts_in_order_and_history_records(store: Store, people: dict[str, list[int]]) -> None:
    before = store.face_persons()
    a, b = person_of(store, people["A"][0]), person_of(store, people["B"][0])
    name_person(store, str(a), "Ann")
    merge_persons(store, str(a), [str(b)])
    remove_face(store, people["A"][0])
    assert [h["command"] for h in history(store)] == [f"remove {people['A'][0]}", f"merge {a} {b}", f"name {a} 'Ann'"]
    assert undo(store) == f"remove {people['A'][0]}"
    assert undo(store) == f"merge {a} {b}"
    assert store.face_persons() == before
    assert store.pins() == {} and store.rejections() == []
    assert store.person_names()[a] == "Ann" and store.person_names()[b] is None
    assert undo(store) == f"name {a} 'Ann'"
    assert store.person_names()[a] is None
    with pytest.raises(NotFoundError, match="nothing to undo"):
        undo(store)
    assert [h["undone"] for h in history(store)] == [True, True, True]


def test_unknown_references_are_clear_errors(store: Store, people: dict[str, list[int]]) -> None:
    with pytest.raises(NotFoundError, match="no person with id 999"):
        resolve_person(store, "999")
    with pytest.raises(NotFoundError, match="no person named 'Zed'"):
        resolve_person(store, "Zed")
    with pytest.raises(NotFoundError, match="no face with id 12345"):
        move_face(store, 12345, "1")


def test_two_faces_of_one_photo_are_never_one_person(store: Store, tmp_path: Path) -> None:
    centre = fake_embedding("twin")
    # A mirror selfie: the same person twice in one photo, plus two more photos of them.
    pair = add_photo(store, tmp_path / "mirror.jpg", [near(centre, 0.1, 1), near(centre, 0.1, 2)])
    others = add_photo(store, tmp_path / "x.jpg", [near(centre, 0.1, 3)]) + add_photo(
        store, tmp_path / "y.jpg", [near(centre, 0.1, 4)]
    )
    report = recluster(store, 0.6, 1, method="whispers")
    assert report.same_photo_separations == 1
    assert person_of(store, pair[0]) != person_of(store, pair[1])
    assert len({person_of(store, f) for f in others}) == 1
    # The user says both are the same person: merging overrides the rule.
    merge_persons(store, str(person_of(store, pair[0])), [str(person_of(store, pair[1]))])
    recluster(store, 0.6, 1, method="whispers")
    assert person_of(store, pair[0]) == person_of(store, pair[1])


def test_a_collage_is_exempt_from_the_same_photo_rule(store: Store, tmp_path: Path) -> None:
    centre = fake_embedding("collage")
    faces = add_photo(store, tmp_path / "collage.jpg", [near(centre, 0.15, k) for k in range(4)])
    add_photo(store, tmp_path / "pair.jpg", [near(centre, 0.15, "p1"), near(centre, 0.15, "p2")])
    report = recluster(store, 0.6, 1, method="whispers")
    assert report.same_photo_separations == 1  # only the pair photo's two faces
    assert len({person_of(store, f) for f in faces}) == 1


def test_plan_reports_exactly_what_applying_does(store: Store, people: dict[str, list[int]], tmp_path: Path) -> None:
    a = person_of(store, people["A"][0])
    name_person(store, str(a), "Ann")
    # New faces, and a face bridging A and B so that clustering changes things.
    add_photo(store, tmp_path / "new.jpg", [near(fake_embedding("D"), 0.1, "d1")])
    add_photo(store, tmp_path / "new2.jpg", [near(fake_embedding("D"), 0.1, "d2")])
    before = store.face_persons()
    plan = recluster(store, 0.6, 2, apply=False, method="whispers")
    assert store.face_persons() == before
    applied = recluster(store, 0.6, 2, method="whispers")
    strip = lambda r: {k: v for k, v in r.as_dict().items() if k not in ("seconds", "applied")}  # noqa: E731
    assert strip(plan) == strip(applied)
    assert applied.faces_new == 2 and len(applied.created) == 1
    # C (2 faces) survives min_size 2; nothing is silently renamed.
    assert applied.names_affected == ()


def test_new_faces_join_named_persons(store: Store, people: dict[str, list[int]], tmp_path: Path) -> None:
    a = person_of(store, people["A"][0])
    name_person(store, str(a), "Ann")
    new = add_photo(
        store, tmp_path / "later.jpg", [near(fake_embedding("A"), 0.25, "later"), fake_embedding("stranger")]
    )
    assert assign_new_faces(store, 0.6) == 1
    assert person_of(store, new[0]) == a
    assert person_of(store, new[1]) is None


def test_recognition_looks_only_at_faces_added_since_it_last_ran(
    store: Store, people: dict[str, list[int]], tmp_path: Path
) -> None:
    a = person_of(store, people["A"][0])
    early = add_photo(store, tmp_path / "early.jpg", [near(fake_embedding("A"), 0.25, "early")])
    assert assign_new_faces(store, 0.6) == 0  # nobody is named yet
    name_person(store, str(a), "Ann")
    late = add_photo(store, tmp_path / "late.jpg", [near(fake_embedding("A"), 0.25, "late")])
    assert assign_new_faces(store, 0.6) == 1
    assert person_of(store, late[0]) == a
    assert person_of(store, early[0]) is None  # left to the next `clusters`
    assert recluster(store, 0.6, 2, method="whispers").faces_new >= 0 and person_of(store, early[0]) == a


def test_recognition_respects_removals(store: Store, people: dict[str, list[int]]) -> None:
    a = person_of(store, people["A"][0])
    name_person(store, str(a), "Ann")
    remove_face(store, people["A"][3])
    assert assign_new_faces(store, 0.6) == 0
    assert person_of(store, people["A"][3]) is None


def test_same_photo_pairs_match_a_photo_by_photo_reference() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.choice([1, 2, 3, 4, 5], size=300, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    photo_ids = np.repeat(np.arange(300) * 7 + 3, sizes)
    rng.shuffle(photo_ids)  # faces of a photo are not stored side by side
    emb = np.stack([fake_embedding(k) for k in range(len(photo_ids))])
    # Some photos are collages (3+ faces of one person), some hold just one look-alike pair.
    for p, photo in enumerate(np.unique(photo_ids)[:40].tolist()):
        members = np.flatnonzero(photo_ids == photo)
        linked = members if p % 2 else members[:2]
        for k, m in enumerate(linked.tolist()):
            emb[m] = near(fake_embedding(f"collage-{p}"), 0.2, k)
    expected = set()
    for photo in np.unique(photo_ids).tolist():
        members = np.flatnonzero(photo_ids == photo).tolist()
        if not is_collage(emb[members], 0.6):
            expected |= {(a, b) for x, a in enumerate(members) for b in members[x + 1 :]}
    a, b = _same_photo_pairs(photo_ids, emb, 0.6)
    got = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    assert got == expected and len(got) == len(a)
    assert any(is_collage(emb[np.flatnonzero(photo_ids == p)], 0.6) for p in np.unique(photo_ids).tolist())


def test_reclustering_says_what_it_is_doing(store: Store, people: dict[str, list[int]]) -> None:
    told: list[Progress] = []
    recluster(store, 0.6, 2, progress=told.append, method="whispers")
    said = [str(p) for p in told]
    assert said[0] == "Reading faces" and said[-1] == "Saving persons"
    assert any(line.startswith("Finding neighbours of") and line.endswith("100%") for line in said)
    assert any(line.startswith("Grouping") for line in said)
