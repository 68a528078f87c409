"""Persons named by their faces' weak labels (Takeout names on one-face photos)."""

from __future__ import annotations

from pathlib import Path

from app.conftest import add_photo
from conftest import fake_embedding, near
from photocluster.app.recluster import recluster
from photocluster.app.weak_names import name_from_weak_labels
from photocluster.store import Store
from photocluster.store.tags import NewTag


def _labelled(store: Store, tmp_path: Path, who: str, k: int, label: str) -> None:
    """A one-face photo of ``who`` whose Takeout sidecar names ``label``."""
    path = tmp_path / f"{who}{k}.jpg"
    [face] = add_photo(store, path, [near(fake_embedding(who), 0.2, f"{who}{k}")])
    found = store.photo_by_path(path)
    assert found is not None and found[0].id is not None
    store.save_tags(found[0].id, [NewTag(label, "takeout", f"{who}{k}.json", None, "weak", face)])


def test_a_person_takes_the_name_its_weak_labels_agree_on(store: Store, tmp_path: Path) -> None:
    for k in range(3):
        _labelled(store, tmp_path, "eve", k, "Eve" if k else "eve")  # the same name, whatever its case
    _labelled(store, tmp_path, "fay", 0, "Fay")
    _labelled(store, tmp_path, "fay", 1, "Gil")  # two names: which one is unknown
    _labelled(store, tmp_path, "hal", 0, "Hal")
    add_photo(store, tmp_path / "hal1.jpg", [near(fake_embedding("hal"), 0.2, "hal1")])  # one label only
    recluster(store, 0.6, 1, method="whispers")
    names = {n for n in store.person_names().values() if n}
    assert names == {"eve"}  # the first label's spelling, once (clustering names them)
    assert name_from_weak_labels(store) == 0  # nothing more to name
    assert name_from_weak_labels(store, min_faces=1) == 1  # Hal's one label, when one is enough
    assert {n for n in store.person_names().values() if n} == {"eve", "Hal"}


def test_a_name_another_person_has_is_not_given_again(store: Store, tmp_path: Path) -> None:
    for k in range(2):
        _labelled(store, tmp_path, "eve", k, "Eve")
    recluster(store, 0.6, 1, method="whispers")
    [(eve, _)] = [(p, n) for p, n in store.person_names().items() if n]
    for k in range(2):
        _labelled(store, tmp_path, "ivy", k, "EVE")  # a look-alike's sidecars name Eve too
    recluster(store, 0.6, 1, method="whispers", full=True)
    named = {p: n for p, n in store.person_names().items() if n}
    assert named == {eve: "Eve"}
