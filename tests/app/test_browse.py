"""The paged views of the review pages: persons by size, a person's faces most doubtful
first, the unknown faces, the faces in doubt (streamed, ranked as doubtful_faces ranks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import fake_embedding, near
from photocluster.app import browse
from photocluster.app.listing import faces_in_doubt
from photocluster.app.recluster import recluster
from photocluster.store import Store

from .conftest import add_photo


def test_person_cards_are_paged_largest_first(store: Store, people: dict[str, list[int]]) -> None:
    first = browse.person_cards(store, 1, per_page=2)
    assert (first.number, first.pages, first.total) == (1, 2, 3)
    assert [c.faces for c in first.items] == [4, 3]
    second = browse.person_cards(store, 2, per_page=2)
    assert [c.faces for c in second.items] == [2]
    # A page past the end shows the last one.
    assert browse.person_cards(store, 99, per_page=2).number == 2
    card = first.items[0]
    assert card.cover is not None and card.cover.id in people["A"]
    assert card.label == f"person_{card.id:04d}"


def test_a_persons_faces_most_doubtful_first(store: Store, tmp_path: Path) -> None:
    centre = fake_embedding("P")
    ids = [add_photo(store, tmp_path / f"p{k}.jpg", [near(centre, 0.1, k)])[0] for k in range(4)]
    odd = add_photo(store, tmp_path / "odd.jpg", [near(centre, 0.45, "odd")])[0]
    recluster(store, 0.6, 1, method="whispers")
    pid = store.face_row(odd)[1]  # type: ignore[index]
    assert pid is not None
    found = browse.person_page(store, pid, 1, per_page=2)
    assert found is not None
    card, page = found
    assert (card.faces, page.pages, page.total) == (5, 3, 5)
    assert page.items[0].id == odd
    assert page.items[0].distance > page.items[1].distance
    assert card.cover is not None and card.cover.id in ids
    assert browse.person_page(store, 10_000) is None


def test_unknown_faces_are_paged_by_id(store: Store, people: dict[str, list[int]], tmp_path: Path) -> None:
    loose = [add_photo(store, tmp_path / f"u{k}.jpg", [fake_embedding(f"u{k}")])[0] for k in range(3)]
    page = browse.unknown_page(store, 2, per_page=2)
    assert ([f.id for f in page.items], page.pages, page.total) == ([loose[2]], 2, 3)


def test_doubts_match_the_whole_library_ranking(store: Store, tmp_path: Path) -> None:
    a, b = fake_embedding("a"), fake_embedding("b")
    first = {}
    for k in range(5):
        first.setdefault("a", add_photo(store, tmp_path / f"a{k}.jpg", [near(a, 0.2, f"a{k}")])[0])
        first.setdefault("b", add_photo(store, tmp_path / f"b{k}.jpg", [near(b, 0.2, f"b{k}")])[0])
    recluster(store, 0.6, 2, method="whispers")
    alice, bob = (store.face_row(first[x])[1] for x in "ab")  # type: ignore[index]
    # One of Bob's faces put with Alice: the most doubtful face.
    stray = add_photo(store, tmp_path / "stray.jpg", [near(b, 0.25, "x")])[0]
    with store.transaction() as conn:
        conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (alice, stray))
    expected = faces_in_doubt(store, limit=10, min_score=0.0)
    found = browse.doubts(store, limit=10, min_score=0.0)
    assert [d.face.id for d in found] == [d.face_id for d in expected]
    assert found[0].face.id == stray and found[0].nearest_person_id == bob
    assert np.allclose([d.score for d in found], [d.score for d in expected])
