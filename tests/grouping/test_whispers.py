"""Chinese whispers keeps every cannot-link and every pin exactly, whatever the graph (pure)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from photocluster.grouping.constraints import build_constraints, same_photo_pairs
from photocluster.grouping.identity import assign_persons
from photocluster.grouping.whispers import chinese_whispers, collapsed_whispers


def clashes(labels: np.ndarray, cannot: tuple[np.ndarray, np.ndarray]) -> int:
    a, b = cannot
    return int(np.count_nonzero(labels[a] == labels[b])) if len(a) else 0


def dense_graph(n: int, groups: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` nodes in ``groups`` tight groups, every pair within a group linked: what the
    faces of a few people photographed many times give. Returns (i, j, group of node)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    i, j = np.triu_indices(n, 1)
    same = group[i] == group[j]
    return i[same], j[same], group


def test_same_slice_partners_never_share_a_label_on_a_400_face_graph() -> None:
    # What the issue measured: 100 same-photo pairs inside 400 faces of 8 people. Updated
    # in one slice, both faces of a pair saw the other's label from before the slice, and
    # 2 of the 100 pairs ended in one person.
    for seed in range(5):
        i, j, group = dense_graph(400, 8, seed)
        rng = np.random.default_rng(100 + seed)
        a = rng.choice(400, 100, replace=False)
        b = np.array([rng.choice(np.flatnonzero(group == group[x])) for x in a.tolist()])
        keep = a != b
        cannot = (a[keep], b[keep])
        labels = chinese_whispers(400, i, j, cannot=cannot)
        assert clashes(labels, cannot) == 0, seed


@st.composite
def constrained_graphs(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], int]:
    n = draw(st.integers(2, 300))
    groups = draw(st.integers(1, 8))
    # Dense groups are where partners updated in one slice both follow the group's label.
    dense = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    density = 1.0 if dense else draw(st.floats(0.05, 1.0))
    i, j = np.triu_indices(n, 1)
    linked = (group[i] == group[j]) & (rng.random(len(i)) < density) | (rng.random(len(i)) < 0.01)
    # Cannot-links mostly inside a group, where the links pull the two together.
    n_cannot = draw(st.integers(0, n))
    ca = rng.integers(0, n, n_cannot)
    cb = np.array([rng.choice(np.flatnonzero(group == group[x])) for x in ca.tolist()], dtype=np.int64)
    stray = rng.random(n_cannot) < 0.2
    cb[stray] = rng.integers(0, n, int(stray.sum()))
    ok = ca != cb
    return n, i[linked], j[linked], (ca[ok], cb[ok]), draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None)
@given(constrained_graphs())
def test_cannot_links_always_hold(
    graph: tuple[int, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], int],
) -> None:
    n, i, j, cannot, seed = graph
    for visiting_order in range(seed, seed + 4):
        labels = chinese_whispers(n, i, j, cannot=cannot, seed=visiting_order)
        assert labels.shape == (n,)
        assert clashes(labels, cannot) == 0, visiting_order
    # Deterministic: the same input, the same labels.
    assert np.array_equal(labels, chinese_whispers(n, i, j, cannot=cannot, seed=seed + 3))


@st.composite
def libraries(draw: st.DrawFn) -> dict[str, object]:
    """Faces of a few people in photos of one to four faces, with pins and rejections."""
    n = draw(st.integers(2, 80))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    people = draw(st.integers(1, 5))
    centres = rng.normal(size=(people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    who = rng.integers(0, people, n)
    emb = (centres[who] + rng.normal(scale=0.02, size=(n, 128))).astype(np.float32)
    photo_ids = np.cumsum(rng.random(n) < 0.5).astype(np.int64)  # consecutive faces share photos
    face_ids = np.arange(1, n + 1, dtype=np.int64) * 10
    current = {int(f): int(100 + w) for f, w in zip(face_ids.tolist(), who.tolist(), strict=True) if rng.random() < 0.7}
    n_pins = draw(st.integers(0, n))
    pins = {int(face_ids[k]): int(200 + rng.integers(0, 4)) for k in rng.choice(n, n_pins, replace=False).tolist()}
    rejections = [
        (int(face_ids[rng.integers(0, n)]), int(100 + rng.integers(0, people))) for _ in range(draw(st.integers(0, 5)))
    ]
    return {
        "face_ids": face_ids,
        "photo_ids": photo_ids,
        "emb": emb,
        "current": current,
        "pins": pins,
        "rejections": rejections,
        "min_size": draw(st.integers(1, 3)),
    }


@settings(max_examples=100, deadline=None)
@given(libraries())
def test_every_pin_holds_and_no_photo_has_one_person_twice(lib: dict[str, object]) -> None:
    face_ids, photo_ids, emb = lib["face_ids"], lib["photo_ids"], lib["emb"]
    pins = lib["pins"]
    assert isinstance(face_ids, np.ndarray) and isinstance(photo_ids, np.ndarray) and isinstance(emb, np.ndarray)
    assert isinstance(pins, dict)
    cons = build_constraints(face_ids, photo_ids, emb, 0.6, lib["current"], pins, lib["rejections"])  # type: ignore[arg-type]
    # Every face linked to every other: the constraints alone must keep people apart.
    i, j = np.triu_indices(len(face_ids), 1)
    labels = collapsed_whispers(i, j, cons.super_of, cons.cannot)
    plan = assign_persons(face_ids, labels, cons, lib["current"], lib["min_size"])  # type: ignore[arg-type]
    for fid, pid in pins.items():
        assert plan.persons[fid] == pid, (fid, pid)
    # Two faces of one photo (not a collage) are two persons, unless the user pinned both
    # to one person (mirrors).
    a, b = same_photo_pairs(photo_ids, emb, 0.6)
    for x, y in zip(face_ids[a].tolist(), face_ids[b].tolist(), strict=True):
        px, py = plan.persons[x], plan.persons[y]
        if px is not None and px == py:
            assert pins.get(x) == pins.get(y) == px, (x, y, px)
    rejected = {(f, p) for f, p in lib["rejections"]}  # type: ignore[attr-defined]
    for fid, person in plan.persons.items():
        if (fid, person) in rejected:
            assert pins.get(fid) == person


def _every_node_whispers(
    n: int, i: np.ndarray, j: np.ndarray, cannot: tuple[np.ndarray, np.ndarray] | None, fixed: np.ndarray | None
) -> np.ndarray:
    """Chinese whispers as it ran before it skipped settled nodes: every node of every
    slice of every pass chooses again (same seed, same slices)."""
    from photocluster.grouping import whispers

    labels = np.arange(n, dtype=np.int64)
    src = np.concatenate([i, j]).astype(np.int32)
    order = np.argsort(src, kind="stable")
    indptr = np.searchsorted(src[order], np.arange(n + 1))
    dst = np.concatenate([j, i]).astype(np.int32)[order]
    ww = np.ones(2 * len(i), dtype=np.float32)
    ca = cb = cptr = None
    if cannot is not None:
        ca = np.concatenate([cannot[0], cannot[1]]).astype(np.int64)
        cb = np.concatenate([cannot[1], cannot[0]]).astype(np.int64)
        corder = np.argsort(ca, kind="stable")
        ca, cb = ca[corder], cb[corder]
        cptr = np.searchsorted(ca, np.arange(n + 1))
    movable = np.diff(indptr) > 0
    if fixed is not None:
        movable &= ~fixed
    connected = np.flatnonzero(movable)
    rng = np.random.default_rng(0)
    batches = max(1, min(whispers._BATCHES, len(connected)))
    for _ in range(100):
        changed = 0
        for nodes in np.array_split(rng.permutation(connected), batches):
            moved, _undone = whispers._update(nodes, labels, indptr, dst, ww, ca, cb, cptr)
            changed += len(moved)
        if changed == 0:
            break
    return whispers.canonical_labels(labels)


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_skipping_settled_nodes_gives_the_labels_of_looking_at_every_node(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    i, j = rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n)
    keep = i != j
    i, j = i[keep], j[keep]
    a, b = rng.integers(0, n, n // 8), rng.integers(0, n, n // 8)
    cannot = (a[a != b], b[a != b]) if seed % 2 else None
    fixed = rng.random(n) < 0.05 if seed % 3 == 0 else None
    expected = _every_node_whispers(n, i, j, cannot, fixed)
    assert np.array_equal(chinese_whispers(n, i, j, cannot=cannot, fixed=fixed), expected)
