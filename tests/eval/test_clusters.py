"""Clustering against identities (photocluster.eval.clusters) with the fake embedder."""

from __future__ import annotations

from pathlib import Path


def test_eval_clusters_clusters_as_the_clusters_command_does(tmp_path: Path, fake_embedder: object) -> None:
    """eval scores exactly what `clusters` stores: the same persons for every labelled face,
    with min-size applied (a face alone is unknown, scored as a cluster of its own)."""
    from conftest import write_photo
    from photocluster.app.recluster import recluster
    from photocluster.eval.clusters import eval_clusters
    from photocluster.store import Store

    root = tmp_path / "people"
    colours = {"ann": (200, 30, 30), "bob": (30, 200, 30), "cy": (30, 30, 200)}
    for name, colour in colours.items():
        for k in range(3 if name != "cy" else 1):
            write_photo(root / name / f"{name}_{k:04d}.jpg", colour)
    with Store(tmp_path / "eval.db") as store:
        result = eval_clusters(store, root, workers=1)
        report = recluster(store)
        persons = {
            f.id: f.person_id for photo_faces in (store.photo_faces(p) for p in range(1, 8)) for f in photo_faces
        }
    assert result.threshold is None and result.operating_point["method"] == "two-stage"
    assert report.persons == 2 and report.unknown == 1
    assert (result.clusters, result.singletons) == (3, 1)
    assert result.pairwise.f1 == 1.0 and result.bcubed.f1 == 1.0
    assert len(set(persons.values()) - {None}) == 2 and list(persons.values()).count(None) == 1
