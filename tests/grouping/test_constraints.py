"""The clustering's rules as links: same photo, collages, pins and rejections (pure)."""

from __future__ import annotations

import numpy as np

from conftest import fake_embedding, near
from photocluster.grouping.constraints import build_constraints, is_collage, same_photo_pairs


def pairs(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    return {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}


def line(distances: list[float]) -> np.ndarray:
    """Points on one axis at the given offsets (2-d embeddings, exact distances)."""
    return np.array([[x, 0.0] for x in distances], dtype=np.float32)


# -- collages ------------------------------------------------------------------------


def test_a_collage_needs_three_linked_faces() -> None:
    assert not is_collage(line([0.0, 0.1]), 0.6)  # two look-alikes: no collage
    assert is_collage(line([0.0, 0.1, 0.2]), 0.6)
    assert not is_collage(line([0.0, 1.0, 2.0]), 0.6)
    assert not is_collage(line([0.0, 0.1, 2.0, 2.1]), 0.6)  # two pairs: still no group of three


def test_a_chain_of_links_is_one_group() -> None:
    # 0-1 and 1-2 are linked, 0-2 (1.0 apart) is not: one group of three all the same.
    assert is_collage(line([0.0, 0.5, 1.0]), 0.6)


# -- same-photo pairs ------------------------------------------------------------------


def test_same_photo_pairs_skip_single_faces_and_collages() -> None:
    photo_ids = np.array([7, 3, 7, 9, 3, 3, 5, 3])
    emb = np.vstack(
        [
            line([0.0]),  # 0: photo 7
            line([10.0]),  # 1: photo 3 (a collage of 1, 4, 5, 7)
            line([0.1]),  # 2: photo 7, a look-alike of face 0: still two people
            line([20.0]),  # 3: photo 9, alone
            line([10.1]),  # 4
            line([10.2]),  # 5
            line([30.0]),  # 6: photo 5, alone
            line([10.3]),  # 7
        ]
    )
    a, b = same_photo_pairs(photo_ids, emb, 0.6)
    assert pairs(a, b) == {(0, 2)}
    assert len(a) == 1 and a.dtype == np.int64
    a, b = same_photo_pairs(photo_ids, emb, 0.05)  # nothing linked: no collage either
    assert pairs(a, b) == {(0, 2), (1, 4), (1, 5), (1, 7), (4, 5), (4, 7), (5, 7)}


def test_same_photo_pairs_of_nothing() -> None:
    a, b = same_photo_pairs(np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.float32), 0.6)
    assert len(a) == len(b) == 0


# -- building the constraints ----------------------------------------------------------


def faces(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face ids 100.., one photo each, far-apart embeddings."""
    emb = np.stack([fake_embedding(f"c{k}") for k in range(n)])
    return np.arange(100, 100 + n), np.arange(n), emb


def test_without_corrections_only_shared_photos_stay_apart() -> None:
    ids, photos, emb = faces(5)
    photos[3] = photos[1]
    cons = build_constraints(ids, photos, emb, 0.6, {}, {}, [])
    assert cons.super_of.tolist() == [0, 1, 2, 3, 4]
    assert cons.person_of_super == {} and cons.rejected == {}
    assert pairs(*cons.cannot) == {(1, 3)}
    assert cons.same_photo_separations == 1


def test_pinned_faces_become_one_node_with_their_person() -> None:
    ids, photos, emb = faces(6)
    # Faces 101 and 104 pinned to person 7 (104 moved there), 105 to person 9; 102 is
    # person 7's by the last clustering only: not its anchor, so not bound to it.
    pins = {101: 7, 104: 7, 105: 9, 999: 9}  # 999: a face of a photo gone
    cons = build_constraints(ids, photos, emb, 0.6, {102: 7, 103: 8}, pins, [])
    s = cons.super_of
    assert s[1] == s[4] != s[2]
    assert len({int(x) for x in s.tolist()}) == 5
    assert cons.person_of_super == {int(s[1]): 7, int(s[5]): 9}
    # Two persons the user made stay apart.
    assert pairs(*cons.cannot) == {(int(min(s[1], s[5])), int(max(s[1], s[5])))}


def test_a_pin_overrides_the_same_photo_rule() -> None:
    ids, photos, emb = faces(4)
    photos[:] = 0  # one photo (a mirror): four faces, no collage (all far apart)
    cons = build_constraints(ids, photos, emb, 0.6, {}, {100: 5, 101: 5}, [])
    s = cons.super_of
    assert s[0] == s[1]
    # Six face pairs share the photo; the pinned pair is one node: five pairs of nodes.
    assert cons.same_photo_separations == 5
    assert len(cons.cannot[0]) == 5
    assert all(x != y for x, y in zip(*cons.cannot, strict=True))


def test_a_rejected_face_stays_apart_from_the_persons_faces() -> None:
    ids, photos, emb = faces(6)
    current = {100: 3, 101: 3, 102: 3, 104: 4}
    cons = build_constraints(ids, photos, emb, 0.6, current, {104: 4}, [(102, 3), (102, 4), (777, 3)])
    s = cons.super_of
    assert cons.rejected == {2: {3, 4}}
    node = int(s[2])
    expected = {(min(node, int(s[k])), max(node, int(s[k]))) for k in (0, 1, 4)}
    assert pairs(*cons.cannot) == expected


def test_constraints_of_a_collage_photo() -> None:
    base = fake_embedding("mirror")
    emb = np.stack([near(base, 0.1, k) for k in range(3)] + [fake_embedding("other")])
    cons = build_constraints(np.arange(4), np.array([1, 1, 1, 2]), emb, 0.6, {}, {}, [])
    assert len(cons.cannot[0]) == 0 and cons.same_photo_separations == 0


def test_constraints_of_no_faces() -> None:
    empty = np.zeros(0, dtype=np.int64)
    cons = build_constraints(empty, empty, np.zeros((0, 128), dtype=np.float32), 0.6, {1: 2}, {1: 2}, [(1, 2)])
    assert len(cons.super_of) == 0 and len(cons.cannot[0]) == 0
    assert cons.person_of_super == {} and cons.rejected == {}
