"""Tags -> names, pins and kept-apart faces; re-imports; the user's corrections win; weak
labels; conflicts; eval tags; and the round trip through export's sidecars."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import exiftool_write, fake_embedding, make_face, near, rotated_photo, tag_faces
from photocluster.app import corrections as corr
from photocluster.app.export import export
from photocluster.app.recluster import recluster
from photocluster.app.tags import import_tags, match_tags, name_from_weak_labels, tag_conflicts
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import UsageError
from photocluster.core.types import Box
from photocluster.detect.tags import regions_in_xmp
from photocluster.eval.tags import eval_tags
from photocluster.exporter.xmp import geometry
from photocluster.store import Store

SETTINGS = DetectionSettings()
LEFT = (20.0, 20.0, 60.0, 70.0)
RIGHT = (100.0, 20.0, 140.0, 70.0)
Boxed = tuple[str, tuple[float, float, float, float]]


def add(
    store: Store, path: Path, faces: list[Boxed], orientation: int = 1, tags: list[Boxed] | None = None
) -> list[int]:
    """A real photo file (160x100 as displayed) with ``tags`` written in, and its faces in
    the store, each embedding near its identity's; returns the face ids."""
    rotated_photo(path, orientation, faces[0][1] if faces else LEFT)
    if tags:
        tag_faces(path, tags)
    st = path.stat()
    scan = store.begin_scan([path.parent], SETTINGS.key)
    pid = store.save_photo(
        path,
        st.st_size,
        st.st_mtime_ns,
        f"sha-{path.name!r}",
        scan,
        SETTINGS.key,
        width=160,
        height=100,
        faces=[
            make_face(near(fake_embedding(who), 0.2, f"{path.name!r}-{k}"), box) for k, (who, box) in enumerate(faces)
        ],
    )
    return [int(f.id) for f in store.photo_faces(pid) if f.id is not None]


def pins(store: Store) -> dict[int, str | None]:
    names = store.person_names()
    return {f: names.get(p) for f, p in store.pins().items()}


def test_match_tags_takes_the_best_overlaps_one_to_one() -> None:
    faces = [Box(*LEFT), Box(*RIGHT)]
    big = Box(10, 5, 75, 80)  # drawn around the left face, hair and all
    assert match_tags([big, Box(*RIGHT), Box(60, 80, 70, 90)], faces) == [0, 1, -1]
    assert match_tags([Box(*LEFT), Box(22, 22, 62, 72)], faces) == [0, -1]  # one face, one tag


def test_tags_name_persons_pin_faces_and_keep_two_names_apart(store: Store, tmp_path: Path) -> None:
    group = tmp_path / "group.jpg"
    ids = add(store, group, [("ann", LEFT), ("ben", RIGHT)], orientation=6)
    tag_faces(group, [("Ann", (16, 14, 64, 76)), ("Ben", RIGHT)])
    report = import_tags(store, [group], SETTINGS)
    assert (report.tags, report.matched, report.unmatched, report.warnings) == (2, 2, [], [])
    assert pins(store) == {ids[0]: "Ann", ids[1]: "Ben"}
    ann, ben = store.persons_named("Ann")[0], store.persons_named("Ben")[0]
    assert set(store.rejections()) == {(ids[0], ben), (ids[1], ann)}
    # Read again: nothing changes, nothing is added twice.
    again = import_tags(store, [group], SETTINGS)
    assert (again.changed_photos, again.tags) == (0, 2)
    assert len(store.all_tags()) == 2 and len(store.pins()) == 2 and len(store.rejections()) == 2
    # Clustering keeps the tags' word.
    recluster(store, 0.6, 1, method="whispers")
    assert {t.name: t.person_name for t in store.all_tags()} == {"Ann": "Ann", "Ben": "Ben"}
    # A photo of an existing name joins that person (names compare without case).
    solo = tmp_path / "solo.jpg"
    [solo_face] = add(store, solo, [("ann", LEFT)])
    tag_faces(solo, [("ann", LEFT)])
    import_tags(store, [solo], SETTINGS)
    assert store.pins()[solo_face] == ann


def test_a_later_correction_wins_over_the_tag(store: Store, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    [fa] = add(store, a, [("ann", LEFT)])
    [fb] = add(store, b, [("ann", LEFT)])
    tag_faces(a, [("Ann", LEFT)])
    tag_faces(b, [("Ann", LEFT)])
    import_tags(store, [a, b], SETTINGS)
    recluster(store, 0.6, 1, method="whispers")
    other = corr.resolve_person(store, "Ann")
    # The user says face a is someone else, and face b is not Ann.
    with store.transaction() as conn:
        cara = store.create_person(conn, "Cara")
    corr.move_face(store, fa, str(cara))
    corr.remove_face(store, fb)
    # The tags change on disk (another region is added): the photos are read again.
    tag_faces(a, [("Ann", LEFT), ("Dan", RIGHT)])
    tag_faces(b, [("Ann", LEFT), ("Dan", RIGHT)])
    report = import_tags(store, [a, b], SETTINGS)
    assert report.changed_photos == 2 and report.user_kept == 2
    assert store.pins().get(fa) == cara
    assert fb not in store.pins() and (fb, other) in store.rejections()
    # The tag says so, and the user said otherwise: a conflict to show.
    kinds = {(c.face_id, c.kind) for c in tag_conflicts(store)}
    assert (fa, "person") in kinds and (fb, "person") in kinds


def test_a_person_the_user_renamed_keeps_the_tagged_faces(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    [fa] = add(store, a, [("ann", LEFT)])
    tag_faces(a, [("Ann", LEFT)])
    import_tags(store, [a], SETTINGS)
    corr.name_person(store, "Ann", "Annie")
    tag_faces(a, [("Ann", LEFT), ("Dan", RIGHT)])  # the photo's tags change: read again
    import_tags(store, [a], SETTINGS)
    assert pins(store) == {fa: "Annie"} and store.persons_named("Ann") == []


def test_a_tag_taken_away_takes_its_pin(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    [fa] = add(store, a, [("ann", LEFT)])
    tag_faces(a, [("Ann", LEFT)])
    import_tags(store, [a], SETTINGS)
    assert fa in store.pins()
    tag_faces(a, [("Anne", LEFT)])  # renamed in the other program
    import_tags(store, [a], SETTINGS)
    assert pins(store) == {fa: "Anne"}
    exiftool_write("-overwrite_original", "-XMP-mwg-rs:all=", a)  # and taken away
    import_tags(store, [a], SETTINGS)
    assert (pins(store), store.all_tags()) == ({}, [])


def test_takeout_names_are_weak_labels_that_name_a_person_when_they_agree(store: Store, tmp_path: Path) -> None:
    faces = {}
    for k, who in enumerate(["eve", "eve", "eve", "fay", "fay"]):
        path = tmp_path / f"{who}{k}.jpg"
        [faces[path]] = add(store, path, [(who, LEFT)])
        name = "Eve" if who == "eve" else ("Fay" if k == 3 else "Gil")  # Fay's labels disagree
        path.with_name(path.name + ".json").write_text(json.dumps({"people": [{"name": name}]}), encoding="utf-8")
    pair = tmp_path / "pair.jpg"  # two faces, one name: which face is unknown
    add(store, pair, [("eve", LEFT), ("fay", RIGHT)])
    pair.with_name("pair.jpg.json").write_text(json.dumps({"people": [{"name": "Eve"}]}), encoding="utf-8")
    report = import_tags(store, [*faces, pair], SETTINGS)
    assert (report.weak, report.matched, store.pins()) == (5, 0, {})  # weak labels pin nothing
    assert (report.unplaced, report.unmatched) == (1, [])
    recluster(store, 0.6, 1, method="whispers")  # clustering names the persons whose weak labels agree
    named = {n for n in store.person_names().values() if n}
    assert named == {"Eve"}
    assert name_from_weak_labels(store) == 0  # once


def test_conflict_when_the_model_puts_a_tagged_face_with_another_name(store: Store, tmp_path: Path) -> None:
    paths = []
    for k, who in enumerate(["ann", "ann", "ben", "ben", "ben"]):
        paths.append(tmp_path / f"{k}.jpg")
        add(store, paths[-1], [(who, LEFT)])
        tag_faces(paths[-1], [(who.title(), LEFT)])
    odd = tmp_path / "odd.jpg"
    [odd_face] = add(store, odd, [("ben", LEFT)])  # looks like Ben
    tag_faces(odd, [("Ann", LEFT)])  # tagged Ann
    import_tags(store, [*paths, odd], SETTINGS)
    recluster(store, 0.6, 1, method="whispers")
    [conflict] = tag_conflicts(store)
    assert (conflict.kind, conflict.face_id, conflict.name, conflict.person_name) == ("model", odd_face, "Ann", "Ben")
    assert "looks like Ben" in conflict.describe()
    # The review page lists it too.
    export(store, tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert 'id="conflicts"' in page and f'id="conflict-{odd_face}"' in page
    assert "tagged <b>Ann</b> looks like" in page


def test_eval_tags_scores_the_clustering_without_the_tags_pins(store: Store, tmp_path: Path) -> None:
    paths = []
    for k, who in enumerate(["ann", "ann", "ann", "ben", "ben"]):
        paths.append(tmp_path / f"{k}.jpg")
        add(store, paths[-1], [(who, LEFT)])
        tag_faces(paths[-1], [(who.title(), LEFT)])
    import_tags(store, paths, SETTINGS)
    clean = eval_tags(store, thresholds=[0.3, 0.6], method="whispers")
    assert (clean.calibration.images, clean.calibration.identities) == (5, 2)
    assert clean.calibration.default.bcubed.f1 == pytest.approx(1.0)
    # A face tagged Ann that looks like Ben: pinned to Ann, yet scored as the pixels say.
    odd = tmp_path / "odd.jpg"
    add(store, odd, [("ben", LEFT)])
    tag_faces(odd, [("Ann", LEFT)])
    import_tags(store, [odd], SETTINGS)
    result = eval_tags(store, thresholds=[0.3, 0.6], method="whispers")
    assert result.calibration.default.pairwise.f1 < 1.0
    assert [r.threshold for r in result.calibration.rows] == [0.3, 0.6]
    doc = result.as_dict()
    assert doc["tagged_faces"] == 6 and doc["names"] == 2 and "rows" in doc


def test_eval_tags_needs_two_names(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    add(store, a, [("ann", LEFT)])
    tag_faces(a, [("Ann", LEFT)])
    import_tags(store, [a], SETTINGS)
    with pytest.raises(UsageError, match="two people"):
        eval_tags(store)


def test_tags_pins_clusters_export_and_back(store: Store, tmp_path: Path) -> None:
    """The whole way: tags -> pins -> clusters -> export's sidecars -> the tag reader."""
    library = tmp_path / "photos"
    expected = {}
    for k, orientation in enumerate([1, 3, 6, 8]):
        path = library / f"p{k}.jpg"
        add(store, path, [("ann", LEFT), ("ben", RIGHT)], orientation, tags=[("Ann", LEFT), ("Ben", RIGHT)])
        expected[path.name] = {"Ann": LEFT, "Ben": RIGHT}
    import_tags(store, sorted(library.glob("*.jpg")), SETTINGS)
    recluster(store, 0.6, 2, method="whispers")
    dest = tmp_path / "out"
    export(store, dest, xmp="dest")
    for person in ("Ann", "Ben"):
        for entry in sorted((dest / person).glob("*.jpg")):
            sidecar = entry.with_name(entry.name + ".xmp")
            ours = regions_in_xmp(sidecar.read_bytes(), geometry(entry), str(sidecar))
            assert all(t.ours for t in ours) and {t.source for t in ours} == {"mwg", "mp"}
            got = {t.name: t.box.as_list() for t in ours if t.box is not None and t.source == "mwg"}
            assert got == {n: pytest.approx(list(b), abs=0.5) for n, b in expected[entry.name].items()}


def test_regions_photocluster_wrote_are_not_imported(store: Store, tmp_path: Path) -> None:
    library = tmp_path / "photos"
    for k in range(2):
        add(store, library / f"p{k}.jpg", [("ann", LEFT)])
    recluster(store, 0.6, 2, method="whispers")
    export(store, tmp_path / "out", xmp="originals")
    assert (library / "p0.jpg.xmp").is_file()
    report = import_tags(store, sorted(library.glob("*.jpg")), SETTINGS)
    assert (report.tags, report.own_regions, store.pins()) == (0, 2, {})


def test_a_sidecar_that_changes_is_read_again_though_the_photo_did_not(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.jpg"
    [fa] = add(store, a, [("ann", LEFT)])
    sidecar = tmp_path / "a.xmp"  # Lightroom's name
    tag_faces(a, [("Ann", LEFT)])
    exiftool_write("-o", sidecar, "-XMP-mwg-rs:all<XMP-mwg-rs:all", a)
    exiftool_write("-overwrite_original", "-XMP-mwg-rs:all=", a)
    first = import_tags(store, [a], SETTINGS)
    assert (first.photos, pins(store)) == (1, {fa: "Ann"})
    assert import_tags(store, [a], SETTINGS).unchanged == 1  # nothing changed: not read again
    before = a.stat().st_mtime_ns
    text = sidecar.read_text(encoding="utf-8").replace(">Ann<", ">Anna<")
    sidecar.write_text(text, encoding="utf-8")
    again = import_tags(store, [a], SETTINGS)
    assert (again.photos, again.changed_photos, a.stat().st_mtime_ns) == (1, 1, before)
    assert pins(store) == {fa: "Anna"}


def test_file_names_and_tag_names_that_are_not_utf8(store: Store, tmp_path: Path) -> None:
    odd = tmp_path / os.fsdecode(b"caf\xe9.jpg")
    [face] = add(store, odd, [("ann", LEFT)], tags=[("Ann", LEFT)])
    lone = tmp_path / "lone.jpg"
    [lone_face] = add(store, lone, [("ben", LEFT)])
    (tmp_path / "lone.jpg.json").write_text('{"people": [{"name": "B\\udcffen"}]}', encoding="utf-8")
    report = import_tags(store, [odd, lone], SETTINGS)
    assert (report.matched, report.weak, report.warnings) == (1, 1, [])
    assert {t.face_id: t.name for t in store.all_tags()} == {face: "Ann", lone_face: "B\ufffden"}
    assert import_tags(store, [odd, lone], SETTINGS).unchanged == 2
