"""The export use case: a folder per person, index.json, idempotent re-exports, thumbnails, chips."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import fake_embedding, make_face, near, write_photo
from photocluster.app.export import EXPORT_MARKER, export
from photocluster.app.recluster import recluster
from photocluster.core.errors import ExportError, UsageError
from photocluster.exporter.folders import safe_folder_name
from photocluster.exporter.index_json import Manifest
from photocluster.store import Store
from photocluster.version import __version__

GOLDEN = Path(__file__).parent.parent / "golden" / "index.json"
SETTINGS = "cnn/max1600/upauto/v1"

# photo (relative to the library) -> (colour, people in it)
LIBRARY: dict[str, tuple[tuple[int, int, int], list[str]]] = {
    "2020/IMG_0001.jpg": ((200, 30, 30), ["alice"]),
    "2021/IMG_0001.jpg": ((30, 200, 30), ["alice"]),
    "2021/beach.png": ((30, 30, 200), ["alice", "bob"]),
    "2022/alice.jpg": ((200, 200, 30), ["alice"]),
    "bob1.jpg": ((30, 200, 200), ["bob"]),
    "bob2.jpg": ((200, 30, 200), ["bob"]),
    "stranger.jpg": ((90, 90, 90), ["stranger"]),
    "noface.jpg": ((10, 10, 10), []),
}


def manifest_of(dest: Path) -> dict[str, Any]:
    """The manifest of the export at ``dest`` as one JSON document, every person's line
    folded in (written back, it reads as a manifest of an earlier version)."""
    m = Manifest.read(dest / EXPORT_MARKER).flattened()
    return {"entries": sorted(m.entries), "files": m.files, "sidecars": m.sidecars, "stamps": m.stamps}


def build_library(store: Store, root: Path) -> None:
    """Write the photos and record their faces as a scan would, then cluster."""
    scan = store.begin_scan([root], SETTINGS)
    for k, (name, (color, people)) in enumerate(LIBRARY.items()):
        path = write_photo(root / name, color)
        st = path.stat()
        faces = [
            make_face(near(fake_embedding(person), 0.3, f"{name}-{n}"), (10 + 60 * n, 10, 60 + 60 * n, 60))
            for n, person in enumerate(people)
        ]
        store.save_photo(path, st.st_size, st.st_mtime_ns, f"sha{k}", scan, SETTINGS, width=64, height=48, faces=faces)
    report = recluster(store, threshold=0.6, min_size=2, method="whispers")
    assert (report.persons, report.unknown) == (2, 1)


@pytest.fixture
def library(store: Store, tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    build_library(store, root)
    return root


def tree(root: Path) -> dict[str, object]:
    """Everything under ``root``: folders, link targets, file identities."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[key] = ("link", os.readlink(path))
            elif path.is_dir():
                out[key] = ("dir",)
            else:
                st = path.stat()
                out[key] = ("file", st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def entries(dest: Path) -> set[str]:
    """Files and links in person folders, as 'folder/name' (not the thumbnails in .thumbs/
    nor the review pages in pages/)."""
    return {
        p.relative_to(dest).as_posix()
        for p in dest.glob("*/*")
        if (p.is_file() or p.is_symlink()) and p.parent.name not in (".thumbs", "pages")
    }


def expected_entries(alice: str = "person_0001", bob: str = "person_0002") -> set[str]:
    return {
        f"{alice}/IMG_0001.jpg",
        f"{alice}/IMG_0001_2.jpg",  # same name as photo 1: made unique with the photo id
        f"{alice}/beach.png",
        f"{alice}/alice.jpg",
        f"{bob}/beach.png",
        f"{bob}/bob1.jpg",
        f"{bob}/bob2.jpg",
        "unknown/stranger.jpg",
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- layout and modes --------------------------------------------------------------


def test_export_writes_a_folder_per_person_unknown_and_index(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    report = export(store, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [EXPORT_MARKER, ".thumbs", "index.html", "index.json", "pages", "person_0001", "person_0002", "unknown"]
    )
    assert entries(dest) == expected_entries()
    assert sorted(p.name for p in (dest / "pages").iterdir()) == [
        "doubt.html",
        "person-1.html",
        "person-2.html",
        "unknown.html",
    ]
    assert (report.persons, report.unknown_faces, report.mode) == (2, 1, "symlink")
    assert (report.created, report.updated, report.removed, report.unchanged, report.skipped) == (8, 0, 0, 0, [])
    assert report.dest == str(dest)
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    assert [(p["id"], p["folder"], p["face_count"], p["photo_count"]) for p in index["persons"]] == [
        (1, "person_0001", 4, 4),
        (2, "person_0002", 3, 3),
    ]
    assert [f["file"] for f in index["unknown"]["faces"]] == ["unknown/stranger.jpg"]
    assert index["unknown"]["faces"][0]["photo"] == str(library / "stranger.jpg")
    for person in index["persons"]:
        for face in person["faces"]:
            assert (dest / face["file"]).resolve() == Path(face["photo"])


def test_symlink_mode(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest, mode="symlink")
    assert os.readlink(dest / "person_0001" / "IMG_0001.jpg") == str(library / "2020" / "IMG_0001.jpg")
    assert os.readlink(dest / "person_0001" / "IMG_0001_2.jpg") == str(library / "2021" / "IMG_0001.jpg")
    assert os.readlink(dest / "person_0002" / "beach.png") == str(library / "2021" / "beach.png")
    assert all((dest / e).is_symlink() for e in entries(dest))


def test_hardlink_mode(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    report = export(store, dest, mode="hardlink")
    assert report.created == 8
    for entry in entries(dest):
        assert not (dest / entry).is_symlink()
    assert os.path.samefile(dest / "person_0001" / "IMG_0001_2.jpg", library / "2021" / "IMG_0001.jpg")
    assert os.path.samefile(dest / "person_0001" / "beach.png", library / "2021" / "beach.png")
    assert os.path.samefile(dest / "person_0002" / "beach.png", library / "2021" / "beach.png")
    assert (library / "2021" / "beach.png").stat().st_nlink == 3


def test_copy_mode_leaves_originals_unchanged(store: Store, library: Path, tmp_path: Path) -> None:
    originals = {name: (sha256(library / name), (library / name).stat().st_mtime_ns) for name in LIBRARY}
    dest = tmp_path / "out"
    export(store, dest, mode="copy")
    export(store, dest, mode="copy")
    assert {name: (sha256(library / name), (library / name).stat().st_mtime_ns) for name in LIBRARY} == originals
    copy = dest / "person_0001" / "IMG_0001_2.jpg"
    assert not copy.is_symlink()
    assert not os.path.samefile(copy, library / "2021" / "IMG_0001.jpg")
    assert sha256(copy) == originals["2021/IMG_0001.jpg"][0]
    assert sha256(dest / "unknown" / "stranger.jpg") == originals["stranger.jpg"][0]


def test_unknown_mode_is_a_usage_error(store: Store, library: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--mode must be one of symlink, hardlink, copy, got 'move'"):
        export(store, tmp_path / "out", mode="move")
    assert not (tmp_path / "out").exists()


# -- idempotence and updates -------------------------------------------------------


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_second_export_changes_nothing(store: Store, library: Path, tmp_path: Path, mode: str) -> None:
    dest = tmp_path / "out"
    export(store, dest, mode=mode)
    before = tree(dest)
    index = (dest / "index.json").read_text(encoding="utf-8")
    report = export(store, dest, mode=mode)
    assert (report.created, report.updated, report.removed, report.unchanged, report.skipped) == (0, 0, 0, 8, [])
    after = tree(dest)
    # index.json and the manifest are rewritten (new inode), with the same content.
    for name in ("index.json", EXPORT_MARKER):
        before.pop(name)
        after.pop(name)
    assert after == before
    assert (dest / "index.json").read_text(encoding="utf-8") == index
    assert entries(dest) == expected_entries()


def test_switching_mode_replaces_own_entries(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest, mode="symlink")
    report = export(store, dest, mode="copy")
    assert (report.created, report.updated, report.unchanged) == (0, 8, 0)
    assert not any((dest / e).is_symlink() for e in entries(dest))


def test_renamed_person_moves_to_a_new_folder(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Alice Smith' WHERE id = 1")
    report = export(store, dest)
    assert (report.created, report.removed, report.unchanged) == (4, 4, 4)
    assert not (dest / "person_0001").exists()
    assert entries(dest) == expected_entries(alice="Alice Smith")
    assert os.readlink(dest / "Alice Smith" / "IMG_0001.jpg") == str(library / "2020" / "IMG_0001.jpg")
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    assert [(p["name"], p["folder"]) for p in index["persons"]] == [
        ("Alice Smith", "Alice Smith"),
        (None, "person_0002"),
    ]
    assert index["persons"][0]["faces"][0]["file"].startswith("Alice Smith/")


def test_two_persons_with_one_name_get_two_folders(store: Store, library: Path, tmp_path: Path) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Sam'")
    export(store, tmp_path / "out")
    assert entries(tmp_path / "out") == expected_entries(alice="Sam", bob="Sam (2)")


def test_files_export_did_not_write_are_never_deleted(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    (dest / "notes.txt").write_text("mine")
    (dest / "person_0001" / "favourite.jpg").write_bytes(b"mine too")
    (dest / "Alice").mkdir()
    (dest / "Alice" / "IMG_0001.jpg").write_bytes(b"someone else's")
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Alice' WHERE id = 1")
    report = export(store, dest)
    assert report.skipped == ["Alice/IMG_0001.jpg"]
    assert (dest / "notes.txt").read_text() == "mine"
    assert (dest / "person_0001" / "favourite.jpg").read_bytes() == b"mine too"
    assert (dest / "Alice" / "IMG_0001.jpg").read_bytes() == b"someone else's"
    # Its own entries left the old folder; the folder stays for the user's file.
    assert sorted(p.name for p in (dest / "person_0001").iterdir()) == ["favourite.jpg"]
    assert (dest / "Alice" / "beach.png").is_symlink()
    # The skipped entry is not claimed: a later export still leaves it alone.
    report = export(store, dest)
    assert report.skipped == ["Alice/IMG_0001.jpg"]
    assert (dest / "Alice" / "IMG_0001.jpg").read_bytes() == b"someone else's"


def test_entries_of_deleted_originals_are_skipped(store: Store, library: Path, tmp_path: Path) -> None:
    (library / "bob2.jpg").unlink()
    report = export(store, tmp_path / "out", mode="copy")
    assert report.skipped == ["person_0002/bob2.jpg"]
    assert entries(tmp_path / "out") == expected_entries() - {"person_0002/bob2.jpg"}


def test_people_who_leave_are_removed(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    recluster(store, threshold=0.6, min_size=5, method="whispers")  # nobody has 5 faces: all unknown
    report = export(store, dest)
    assert report.persons == 0
    assert report.unknown_faces == 8
    assert not (dest / "person_0001").exists()
    assert not (dest / "person_0002").exists()
    assert {p.name for p in (dest / "unknown").iterdir()} == {
        "IMG_0001.jpg",
        "IMG_0001_2.jpg",
        "alice.jpg",
        "beach.png",
        "bob1.jpg",
        "bob2.jpg",
        "stranger.jpg",
    }


# -- destination checks ------------------------------------------------------------


def test_a_foreign_non_empty_dest_is_refused(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "documents"
    dest.mkdir()
    (dest / "thesis.txt").write_text("do not touch")
    with pytest.raises(ExportError) as info:
        export(store, dest)
    assert str(info.value) == (
        f"{dest}: folder is not empty and was not written by photocluster; choose an empty or new folder"
    )
    assert [p.name for p in dest.iterdir()] == ["thesis.txt"]


def test_a_dest_that_is_a_file_is_refused(store: Store, library: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="exists and is not a folder"):
        export(store, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_an_empty_existing_dest_is_accepted(store: Store, library: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert export(store, tmp_path / "out").created == 8


def test_export_folders_are_skipped_by_scans(store: Store, library: Path, tmp_path: Path) -> None:
    from photocluster.detect.images import walk

    export(store, library / "people", mode="copy")
    assert len(list(walk([library]))) == len(LIBRARY)


# -- names -------------------------------------------------------------------------


NASTY = ["../../escape", "/", "..", ".", "\x00", "CON", "<script>", "a/../../b", "x" * 300, "😀" * 300]


def test_nothing_is_written_outside_dest(store: Store, library: Path, tmp_path: Path) -> None:
    # Give each of the 8 faces (ids 1..8) its own person with a hostile name (ids 3..10).
    hostile = ["../../escape", "/", "..", "\x00", "CON", "<script>", "a/../../b", "😀" * 300]
    with store.transaction() as conn:
        for face_id, name in enumerate(hostile, start=1):
            pid = conn.execute("INSERT INTO persons(name, created_at) VALUES (?, 0)", (name,)).lastrowid
            conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (pid, face_id))
    outside_before = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("out", "test.db"))}
    dest = tmp_path / "out"
    report = export(store, dest)
    outside_after = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("out", "test.db"))}
    assert outside_after == outside_before
    assert not (tmp_path / "escape").exists()
    assert (report.persons, report.created, report.skipped) == (8, 8, [])
    assert entries(dest) == {
        "_.._escape/IMG_0001.jpg",
        "_/IMG_0001.jpg",
        "_ (5)/beach.png",  # ".." and NUL also become "_": the person id tells them apart
        "_ (6)/beach.png",
        "_CON/alice.jpg",
        "_script_/bob1.jpg",
        "a_.._.._b/bob2.jpg",
        f"{'😀' * 50}/stranger.jpg",  # cut to 200 bytes of UTF-8
    }
    # Every path is at most two levels below DEST (the thumbnails' shards three), and every
    # link leads to a library photo; the only plain files in folders are the thumbnails and
    # the review pages.
    for path in dest.rglob("*"):
        rel = path.relative_to(dest)
        plain = path.is_file() and not path.is_symlink()
        assert (
            len(rel.parts) == 1
            or (rel.parts[0] == ".thumbs" and len(rel.parts) == 2 and path.is_dir() and not path.is_symlink())
            or (rel.parts[0] == ".thumbs" and len(rel.parts) == 3 and plain)
            or (rel.parts[0] == "pages" and len(rel.parts) == 2 and plain and rel.suffix == ".html")
            or (len(rel.parts) == 2 and path.is_symlink() and Path(os.readlink(path)).parent.is_relative_to(library))
        ), rel


def test_a_person_folder_replaced_by_a_symlink_is_refused(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for entry in (dest / "person_0002").iterdir():
        entry.unlink()
    (dest / "person_0002").rmdir()
    os.symlink(elsewhere, dest / "person_0002")
    with pytest.raises(ExportError, match="could end up outside the export folder"):
        export(store, dest)
    assert list(elsewhere.iterdir()) == []


def test_nasty_names_export_to_safe_folders(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    for name in NASTY:
        with store.transaction() as conn:
            conn.execute("UPDATE persons SET name = ? WHERE id = 1", (name,))
        export(store, dest)
        folder = safe_folder_name(name)
        assert {e for e in entries(dest) if e.startswith(folder + "/")} == {
            f"{folder}/{n}" for n in ("IMG_0001.jpg", "IMG_0001_2.jpg", "beach.png", "alice.jpg")
        }
        assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == sorted(
            [folder, ".thumbs", "pages", "person_0002", "unknown"]
        )


# -- index.json golden -------------------------------------------------------------


def test_index_json_matches_golden(store: Store, library: Path, tmp_path: Path) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Zoë <Z>' WHERE id = 2")
    dest = tmp_path / "out"
    export(store, dest)
    text = (dest / "index.json").read_text(encoding="utf-8")
    text = text.replace(str(tmp_path), "<TMP>").replace(f'"version": "{__version__}"', '"version": "<VERSION>"')
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: run with UPDATE_GOLDEN=1 to write it"
    assert text == GOLDEN.read_text(encoding="utf-8")


# -- file names ----------------------------------------------------------------------


def one_person_store(store: Store, paths: list[Path]) -> None:
    """Every photo holds one face of the same person."""
    scan = store.begin_scan([paths[0].parent], SETTINGS)
    base = fake_embedding("solo")
    for k, path in enumerate(paths):
        st = path.stat()
        store.save_photo(
            path, st.st_size, st.st_mtime_ns, f"h{k}", scan, SETTINGS, faces=[make_face(near(base, 0.2, k))]
        )
    assert recluster(store).persons == 1


def test_file_names_stay_unique_when_a_made_up_name_exists(store: Store, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    # Saved in this order: ids 1, 2, 3. By path, a/IMG_2.jpg comes first and takes "IMG_2.jpg",
    # which is also what c/IMG.jpg (photo 2) would be renamed to.
    paths = [
        write_photo(lib / "b" / "IMG.jpg", (1, 2, 3)),
        write_photo(lib / "c" / "IMG.jpg", (4, 5, 6)),
        write_photo(lib / "a" / "IMG_2.jpg", (7, 8, 9)),
    ]
    one_person_store(store, paths)
    dest = tmp_path / "out"
    report = export(store, dest)
    assert report.created == 3
    links = {p.name: os.readlink(p) for p in (dest / "person_0001").iterdir()}
    assert len(links) == 3
    assert sorted(links.values()) == sorted(str(p) for p in paths)
    index = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    files = {f["photo"]: f["file"] for f in index["persons"][0]["faces"]}
    assert len(set(files.values())) == 3
    for photo, file in files.items():
        assert os.readlink(dest / file) == photo


def test_names_that_are_not_utf8_are_exported_exactly(store: Store, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    raw = os.fsencode(lib) + b"/caf\xe9.jpg"  # Latin-1 "café": invalid UTF-8
    odd = Path(os.fsdecode(raw))
    write_photo(odd, (10, 20, 30))
    plain = write_photo(lib / "plain.jpg", (30, 20, 10))
    one_person_store(store, [odd, plain])
    dest = tmp_path / "out"
    export(store, dest, mode="copy")
    assert sorted(os.listdir(os.fsencode(dest / "person_0001"))) == [b"caf\xe9.jpg", b"plain.jpg"]
    text = (dest / "index.json").read_bytes().decode("utf-8")  # still valid UTF-8
    photos = {os.fsencode(f["photo"]) for f in json.loads(text)["persons"][0]["faces"]}
    assert photos == {raw, os.fsencode(plain)}
    assert export(store, dest, mode="copy").unchanged == 2


# -- review page thumbnails, face chips (--crops), the index schema ------------------

SCHEMA = Path(__file__).parents[2] / "schema" / "index.schema.json"


def validate(doc: object) -> None:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(doc)


def index_of(dest: Path) -> dict[str, Any]:
    doc = json.loads((dest / "index.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def all_faces(index: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for p in index["persons"] for f in p["faces"]] + index["unknown"]["faces"]


def review_pages(dest: Path, *patterns: str) -> str:
    """The text of the review pages (all of them, or those matching ``patterns``)."""
    paths = sorted({p for pattern in patterns or ("index.html", "pages/*.html") for p in dest.glob(pattern)})
    return "".join(p.read_text(encoding="utf-8") for p in paths)


def test_every_face_gets_a_thumbnail_for_the_review_page(store: Store, library: Path, tmp_path: Path) -> None:
    from PIL import Image

    dest = tmp_path / "out"
    report = export(store, dest)
    assert (report.thumbnails, report.crops, report.warnings) == (8, 0, [])
    assert report.review == str(dest / "index.html")
    faces = all_faces(index_of(dest))
    assert sorted(p.relative_to(dest).as_posix() for p in (dest / ".thumbs").rglob("*.webp")) == sorted(
        f["thumbnail"] for f in faces
    )
    assert all(f["thumbnail"].split("/")[1] == Path(f["thumbnail"]).stem.split("_")[1][:2] for f in faces)
    for f in faces:
        assert f["crop"] is None
        with Image.open(dest / f["thumbnail"]) as im:
            assert (im.format, im.size) == ("WEBP", (128, 128))
    page = review_pages(dest)
    assert all(f'data-face-id="{f["id"]}"' in page for f in faces)


def test_worker_processes_cut_the_same_images(
    store: Store, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.exporter import thumbnails

    here = export(store, tmp_path / "here", crops=True, workers=1)
    with store.transaction() as conn:  # the thumbnails the first export cut and stored: cut again
        conn.execute("DELETE FROM face_thumbs")
    (library / "bob2.jpg").unlink()
    monkeypatch.setattr(thumbnails, "_BATCH", 2)  # several batches, so that both workers get some
    pooled = export(store, tmp_path / "pooled", crops=True, workers=2)
    assert (here.thumbnails, here.crops, pooled.thumbnails, pooled.crops) == (8, 8, 7, 7)
    gone = f"{library / 'bob2.jpg'}: the photo is gone"
    assert [w.split(": not written: ")[1] for w in pooled.warnings] == [gone, gone]  # its thumbnail and chip
    pooled_dest = tmp_path / "pooled"
    images = sorted(
        p.relative_to(pooled_dest) for p in [*pooled_dest.glob(".thumbs/*/*"), *pooled_dest.glob("crops/*/*")]
    )
    assert len(images) == 14
    for rel in images:
        assert (tmp_path / "here" / rel).read_bytes() == (tmp_path / "pooled" / rel).read_bytes(), rel


def test_a_thumbnail_follows_its_face(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    old = {f["id"]: f["thumbnail"] for f in all_faces(index_of(dest))}
    with store.transaction() as conn:  # face 1 found elsewhere (a re-scan may even reuse its id)
        conn.execute("UPDATE faces SET left = 0, top = 0, right = 30, bottom = 30 WHERE id = 1")
    report = export(store, dest)
    new = {f["id"]: f["thumbnail"] for f in all_faces(index_of(dest))}
    assert {k for k in new if new[k] != old[k]} == {1}
    assert not (dest / old[1]).exists() and (dest / new[1]).is_file()
    assert report.thumbnails == 8 and len(list((dest / ".thumbs").rglob("*.webp"))) == 8


def test_a_photo_gone_or_changed_gets_no_thumbnail(store: Store, library: Path, tmp_path: Path) -> None:
    (library / "bob2.jpg").unlink()
    write_photo(library / "bob1.jpg", (1, 2, 3), size=(80, 80))  # not what was scanned
    dest = tmp_path / "out"
    report = export(store, dest)
    assert report.thumbnails == 6
    assert sorted(w.split(": not written: ")[1] for w in report.warnings) == [
        f"{library / 'bob1.jpg'}: the photo changed since it was scanned (run photocluster scan)",
        f"{library / 'bob2.jpg'}: the photo is gone",
    ]
    missing = {Path(f["photo"]).name for f in all_faces(index_of(dest)) if f["thumbnail"] is None}
    assert missing == {"bob1.jpg", "bob2.jpg"}
    validate(index_of(dest))
    persons_and_unknown = review_pages(dest, "pages/person-*.html", "pages/unknown*.html")
    assert persons_and_unknown.count('class="nothumb"') == 2


def test_crops_are_aligned_chips_per_person(store: Store, library: Path, tmp_path: Path) -> None:
    from PIL import Image

    dest = tmp_path / "out"
    report = export(store, dest, crops=True)
    assert (report.crops, report.warnings) == (8, [])
    index = index_of(dest)
    for p in [*index["persons"], {"folder": "unknown", **index["unknown"]}]:
        for f in p["faces"]:
            assert f["crop"] == f"crops/{p['folder']}/{f['id']}.jpg"
            with Image.open(dest / f["crop"]) as im:
                assert (im.format, im.size) == ("JPEG", (150, 150))
    validate(index)
    before = tree(dest / "crops")
    assert export(store, dest, crops=True).crops == 8
    assert tree(dest / "crops") == before  # unchanged chips are not rewritten
    # A renamed person's chips move with its folder.
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Alice' WHERE id = 1")
    export(store, dest, crops=True)
    assert sorted(p.name for p in (dest / "crops").iterdir()) == ["Alice", "person_0002", "unknown"]
    # Without --crops they go, and so do their folders; nothing else is touched.
    report = export(store, dest)
    assert report.crops == 0
    assert not (dest / "crops").exists()
    assert entries(dest) == expected_entries(alice="Alice")


def test_crops_is_a_reserved_name(store: Store, library: Path, tmp_path: Path) -> None:
    assert safe_folder_name("crops") == "_crops"
    assert safe_folder_name("index.html") == "_index.html"


def test_a_foreign_review_page_is_left_alone(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    (dest / "index.html").unlink()
    (dest / "index.html").write_text("my own page")
    manifest = manifest_of(dest)
    del manifest["files"]["index.html"]
    (dest / EXPORT_MARKER).write_text(json.dumps(manifest))
    report = export(store, dest)
    assert (dest / "index.html").read_text() == "my own page"
    assert report.review == ""
    assert report.warnings == [
        f"{dest / 'index.html'}: not written: a file that photocluster did not write is in the way"
    ]


def test_manifests_of_earlier_versions_are_read(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    (dest / "index.html").unlink()
    shutil.rmtree(dest / ".thumbs")
    shutil.rmtree(dest / "pages")  # 0.1.0 wrote one page
    manifest = manifest_of(dest)
    (dest / EXPORT_MARKER).write_text(json.dumps({"entries": manifest["entries"]}))  # photocluster 0.1.0
    report = export(store, dest)
    assert (report.unchanged, report.thumbnails, report.warnings) == (8, 8, [])
    assert (dest / "index.html").is_file()
    # Written back in this version's layout, read a line at a time from then on.
    assert (dest / EXPORT_MARKER).read_text().startswith('{"format": 3,\n')


@pytest.mark.parametrize("names", [{}, {1: "Zoë <Z>", 2: "😀" * 300}, {1: "../../x", 2: "crops"}])
def test_exports_match_the_published_schema(store: Store, library: Path, tmp_path: Path, names: dict[int, str]) -> None:
    with store.transaction() as conn:
        for pid, name in names.items():
            conn.execute("UPDATE persons SET name = ? WHERE id = ?", (name, pid))
    dest = tmp_path / "out"
    export(store, dest, crops=True)
    validate(index_of(dest))
    export(store, dest)
    validate(index_of(dest))


def test_the_golden_index_matches_the_published_schema() -> None:
    validate(json.loads(GOLDEN.read_text(encoding="utf-8")))


def test_the_schema_rejects_what_index_json_never_holds(store: Store, library: Path, tmp_path: Path) -> None:
    import jsonschema

    export(store, tmp_path / "out")
    good = index_of(tmp_path / "out")
    bad_docs = []
    for change in (
        lambda d: d.update(extra=1),
        lambda d: d["persons"][0]["faces"][0].update(thumbnail="/etc/passwd"),
        lambda d: d["persons"][0]["faces"][0].update(file="../x.jpg"),
        lambda d: d["persons"][0]["faces"][0].update(box=[1, 2, 3]),
        lambda d: d["persons"][0]["faces"][0].pop("crop"),
        lambda d: d["persons"][0].update(id=0),
        lambda d: d.update(schema_version=2),
    ):
        doc = json.loads(json.dumps(good))
        change(doc)
        bad_docs.append(doc)
    for doc in bad_docs:
        with pytest.raises(jsonschema.ValidationError):
            validate(doc)


def test_cli_export_crops(store: Store, library: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from photocluster.cli import app

    result = CliRunner().invoke(app, ["export", str(tmp_path / "out"), "--db", str(store.path), "--crops"])
    assert result.exit_code == 0, result.stderr
    assert "8 thumbnails, 8 face chips" in result.stdout
    assert str(tmp_path / "out" / "index.html") in result.stdout


def test_cli_export_summarises_warnings(store: Store, tmp_path: Path) -> None:
    """A library whose photos are gone: a count and the first few lines, not a line per face."""
    from typer.testing import CliRunner

    from photocluster.cli import app

    paths = [write_photo(tmp_path / "lib" / f"p{k:02d}.jpg", (k, 2 * k, 3 * k)) for k in range(25)]
    one_person_store(store, paths)
    for path in paths:
        path.unlink()
    report = export(store, tmp_path / "direct")
    assert (len(report.skipped), report.warning_count, len(report.warnings)) == (25, 25, 20)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "out"), "--db", str(store.path)])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]  # not the progress bar
    assert len(lines) == 22, lines
    assert "  ... 15 more photo entries skipped" in lines
    assert "  ... 25 warnings in all (the first 10 shown)" in lines


def test_crops_and_dest_sidecars_stay_inside_dest(store: Store, library: Path, tmp_path: Path) -> None:
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = '../../escape' WHERE id = 1")
        conn.execute("UPDATE persons SET name = 'crops' WHERE id = 2")
    outside_before = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("out", "test.db"))}
    dest = tmp_path / "out"
    report = export(store, dest, crops=True, xmp="dest")
    assert (report.crops, report.sidecars, report.warnings) == (8, 7, [])
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(("out", "test.db"))} == outside_before
    assert sorted(p.name for p in (dest / "crops").iterdir()) == ["_.._escape", "_crops", "unknown"]
    assert (dest / "_crops" / "bob1.jpg.xmp").is_file() and (dest / "crops" / "_crops").is_dir()
    for path in dest.rglob("*"):
        assert path.resolve().is_relative_to(dest) or path.is_symlink()


# -- thumbnails from the store, and an export killed half-way ----------------------------


def test_thumbnails_come_from_the_store_and_missing_ones_are_stored(
    store: Store, library: Path, tmp_path: Path
) -> None:
    from photocluster.detect.thumbnail import THUMB_PARAMS

    assert store.thumbnail_count() == 0  # this library was recorded without thumbnails
    export(store, tmp_path / "first")
    assert store.thumbnail_count(THUMB_PARAMS) == 8  # cut once, kept for every later export
    faces = all_faces(index_of(tmp_path / "first"))
    for f in faces:
        assert (tmp_path / "first" / f["thumbnail"]).read_bytes() == store.thumbnail(f["id"], THUMB_PARAMS)
    # What the store holds is what an export writes: no photo is decoded for it.
    marked = b"\xff\xd8 stored by a scan \xff\xd9"
    store.put_thumbnails([(faces[0]["id"], THUMB_PARAMS, marked)])
    for photo in library.rglob("*.*"):
        photo.write_bytes(b"not a photo any more")  # decoding any of them would fail
    report = export(store, tmp_path / "second")
    assert report.thumbnails == 8
    second = {f["id"]: f["thumbnail"] for f in all_faces(index_of(tmp_path / "second"))}
    assert (tmp_path / "second" / second[faces[0]["id"]]).read_bytes() == marked
    assert not [w for w in report.warnings if "thumbnail" in w]


_KILLED = """
import os, sys
from photocluster.exporter import review
from photocluster.app.export import export
from photocluster.store import Store

written = review.write_page
count = 0

def write_then_die(path, text):
    global count
    written(path, text)
    count += 1
    if count == int(sys.argv[3]):
        os._exit(9)  # as a kill -9 would: no cleanup, no finally

review.write_page = write_then_die
with Store(sys.argv[1]) as store:
    export(store, sys.argv[2])
"""


@pytest.mark.parametrize("pages", [1, 3])
def test_an_export_killed_half_way_orphans_nothing(store: Store, library: Path, tmp_path: Path, pages: int) -> None:
    import subprocess
    import sys

    dest = tmp_path / "out"
    export(store, dest)
    with store.transaction() as conn:  # the next export moves alice's entries to a new folder
        conn.execute("UPDATE persons SET name = 'Alice' WHERE id = 1")
    done = subprocess.run([sys.executable, "-c", _KILLED, str(store.path), str(dest), str(pages)], check=False)
    assert done.returncode == 9
    assert (dest / ".photocluster-export.journal").is_file()
    assert (dest / "Alice").is_dir()  # it got as far as placing alice's entries
    report = export(store, dest)
    assert report.warnings == []
    assert not (dest / ".photocluster-export.journal").exists()
    assert not (dest / "person_0001").exists()
    assert entries(dest) == expected_entries(alice="Alice")
    manifest = manifest_of(dest)
    on_disk = {
        p.relative_to(dest).as_posix()
        for p in dest.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.name not in (EXPORT_MARKER, "index.json")
    }
    assert on_disk == set(manifest["entries"]) | set(manifest["files"])
    assert json.loads((dest / "index.json").read_text())["persons"][0]["name"] == "Alice"


def test_unknown_faces_are_written_a_chunk_at_a_time(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.app import export as use_case
    from photocluster.exporter import review

    scan = store.begin_scan([tmp_path], SETTINGS)
    for k in range(7):  # seven strangers; two of them share a file name
        path = write_photo(tmp_path / "lib" / f"d{k}" / ("same.jpg" if k < 2 else f"{k}.jpg"), (k, 9, 9))
        st = path.stat()
        faces = [make_face(fake_embedding(f"stranger {k}"))]
        if k == 3:  # and one photo holds two of them, whose faces fall in two chunks
            faces.append(make_face(fake_embedding("stranger 3b"), (60, 10, 110, 60)))
        store.save_photo(path, st.st_size, st.st_mtime_ns, f"u{k}", scan, SETTINGS, width=64, height=48, faces=faces)
    assert recluster(store, threshold=0.6, min_size=2, method="whispers").unknown == 8
    monkeypatch.setattr(review, "FACES_PER_PAGE", 2)
    monkeypatch.setattr(use_case, "_PAGES_PER_CHUNK", 1)  # four chunks of two faces
    dest = tmp_path / "out"
    report = export(store, dest)
    assert (report.unknown_faces, report.thumbnails, report.warnings) == (8, 8, [])
    assert (report.created, report.unchanged) == (7, 0)
    index = index_of(dest)
    validate(index)
    ids = [f["id"] for f in index["unknown"]["faces"]]
    assert ids == sorted(ids) and len(ids) == 8
    files = [f["file"] for f in index["unknown"]["faces"]]
    # Unique names across chunks: the second same.jpg is made unique, whichever chunk it is in.
    assert len(set(files)) == 7 and "unknown/same.jpg" in files and files.count("unknown/3.jpg") == 2
    assert sum(f.startswith("unknown/same_") for f in files) == 1
    assert {f["file"] for f in index["unknown"]["faces"]} == entries(dest)
    assert sorted(p.name for p in (dest / "pages").glob("unknown*")) == [
        "unknown-2.html",
        "unknown-3.html",
        "unknown-4.html",
        "unknown.html",
    ]
    shown = review_pages(dest, "pages/unknown*.html")
    assert all(f'data-face-id="{i}"' in shown for i in ids)
    assert 'data-page="4" data-pages="4"' in (dest / "pages" / "unknown-4.html").read_text()
    # Fewer unknown faces next time: the pages they no longer fill go.
    with store.transaction() as conn:
        conn.execute("DELETE FROM photos WHERE sha256 IN ('u5', 'u6')")
    export(store, dest)
    assert sorted(p.name for p in (dest / "pages").glob("unknown*")) == [
        "unknown-2.html",
        "unknown-3.html",
        "unknown.html",
    ]
    assert len(index_of(dest)["unknown"]["faces"]) == 6


def test_a_second_process_renders_what_this_one_would(
    store: Store, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.app import export as use_case

    here = export(store, tmp_path / "here")
    monkeypatch.setattr(use_case, "_RENDER_PROCESS_FACES", 0)  # a large library's way, on a small one
    there = export(store, tmp_path / "there")
    assert (there.thumbnails, there.warnings) == (here.thumbnails, here.warnings)

    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes().replace(os.fsencode(root), b"<DEST>")
            for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and p.name != EXPORT_MARKER
        }

    assert files(tmp_path / "there") == files(tmp_path / "here")
    # A page someone else put there is left alone and said so, from the other process too.
    (tmp_path / "there" / "pages" / "person-2.html").unlink()
    (tmp_path / "there" / "pages" / "person-2.html").write_text("mine")
    manifest = manifest_of(tmp_path / "there")
    del manifest["files"]["pages/person-2.html"]
    (tmp_path / "there" / EXPORT_MARKER).write_text(json.dumps(manifest))
    again = export(store, tmp_path / "there")
    assert (tmp_path / "there" / "pages" / "person-2.html").read_text() == "mine"
    assert [w.split(": ", 1)[1] for w in again.warnings] == [
        "not written: a file that photocluster did not write is in the way"
    ]


def test_a_failure_in_the_rendering_process_is_one_clear_error(
    store: Store, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.app import export as use_case

    monkeypatch.setattr(use_case, "_RENDER_PROCESS_FACES", 0)
    dest = tmp_path / "out"
    export(store, dest)
    page = dest / "pages" / "person-1.html"
    page.unlink()
    page.mkdir()  # the page it wrote before cannot be replaced now
    # ... and the manifest (as an older version wrote it) has no stamp to tell it is not ours.
    manifest = manifest_of(dest)
    del manifest["stamps"]["pages/person-1.html"]
    (dest / EXPORT_MARKER).write_text(json.dumps(manifest))
    with pytest.raises(ExportError) as failed:
        export(store, dest)
    assert str(failed.value).startswith(f"{dest}: cannot write the export's pages (")
    assert "\n" not in str(failed.value)
    assert (dest / "index.json").is_file() and not (dest / ".tmp-index.json").exists()
    page.rmdir()
    assert export(store, dest).warnings == []
    assert page.is_file()
