"""Re-export with a person skipped whole when nothing it writes changed (issue 26): what
is skipped, what is not, and that the result is always what a fresh export writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import fake_embedding, make_face, near, write_photo
from photocluster.app import browse, corrections
from photocluster.app.export import EXPORT_MARKER, ExportReport, export
from photocluster.exporter.index_json import Manifest
from photocluster.exporter.stamps import EDITED
from photocluster.store import Store

from .test_export import SETTINGS, build_library, manifest_of


@pytest.fixture
def library(store: Store, tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    build_library(store, root)
    return root


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The persons whose faces an export reads from the store (None: the unknown faces)."""
    seen: list[int | None] = []
    original = Store.member_faces

    def spy(self: Store, person_id: int | None, *args: object, **kwargs: object) -> object:
        if person_id not in seen:
            seen.append(person_id)
        return original(self, person_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Store, "member_faces", spy)
    return seen


def snapshot(root: Path) -> dict[str, object]:
    """Every file of an export but its manifest: link targets, file bytes, folders."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name == EXPORT_MARKER:
                continue
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = "folder"
            else:
                out[rel] = path.read_bytes()
    return out


def again(store: Store, dest: Path, read: list[int | None], **options: object) -> ExportReport:
    """Export over ``dest`` and check it holds what a fresh export writes."""
    read.clear()
    report = export(store, dest, **options)  # type: ignore[arg-type]
    seen = list(read)
    fresh = dest.parent / f"fresh-{time.monotonic_ns()}"
    export(store, fresh, **options)  # type: ignore[arg-type]
    assert snapshot(dest) == snapshot(fresh)
    read[:] = seen  # what the export over ``dest`` read
    return report


def summary(store: Store) -> object:
    return browse.summary(store, len(browse.doubts(store)))


def settle(dest: Path) -> None:
    """As if the last export ended a while ago: its folders' mtimes are older than its
    manifest's, so a folder's stamp alone vouches for its links (no same-tick doubt)."""
    later = time.time() + 5
    os.utime(dest / EXPORT_MARKER, (later, later))


def test_an_export_with_nothing_changed_reads_no_person_and_writes_nothing(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    first = export(store, dest)
    assert read == [1, 2, None]
    settle(dest)
    mtimes = {p: p.lstat().st_mtime_ns for p in dest.rglob("*") if p.name != EXPORT_MARKER}
    report = again(store, dest, read)
    assert read == []  # neither the persons' faces nor the unknown faces read again
    assert (report.unchanged, report.created, report.updated, report.removed) == (first.created, 0, 0, 0)
    assert (report.thumbnails, report.persons, report.unknown_faces) == (first.thumbnails, 2, 1)
    assert report.warnings == [] and report.review == str(dest / "index.html")
    assert {p: p.lstat().st_mtime_ns for p in dest.rglob("*") if p.name != EXPORT_MARKER} == mtimes
    # ... and again, over the re-export's own manifest.
    assert again(store, dest, read).unchanged == first.created and read == []


def test_a_renamed_person_is_written_again_and_the_others_are_skipped(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    corrections.name_person(store, "2", "Bob")
    report = again(store, dest, read)
    assert read == [2]
    assert (dest / "Bob").is_dir() and not (dest / "person_0002").exists()
    assert report.removed == 3 and report.warnings == []
    assert "Bob" in (dest / "index.html").read_text(encoding="utf-8")
    assert again(store, dest, read).warnings == [] and read == []


def test_a_face_moved_rewrites_both_persons_only(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    alice = [f.id for f in store.member_faces(1)[0]]
    before = summary(store)
    corrections.move_face(store, alice[0], "2")
    again(store, dest, read)
    # The unknown faces' pages too when the numbers in every page's header changed.
    assert sorted(read, key=str) == ([1, 2] if summary(store) == before else [1, 2, None])


def test_a_new_face_changes_every_page_header(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    path = write_photo(library / "new.jpg", (120, 60, 20))
    st = path.stat()
    scan = store.begin_scan([library], SETTINGS)
    face = make_face(near(fake_embedding("newcomer"), 0.3, "new"), (10, 10, 60, 60))
    store.save_photo(path, st.st_size, st.st_mtime_ns, "sha-new", scan, SETTINGS, width=64, height=48, faces=[face])
    report = again(store, dest, read)
    # The counts in every page's header changed: every person's pages are written again.
    assert sorted(read, key=str) == [1, 2, None] and report.unknown_faces == 2


def test_a_removed_photo_takes_its_entries_away(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    (library / "bob2.jpg").unlink()
    gone = next(f.photo_id for f in store.member_faces(2)[0] if f.photo_path.name == "bob2.jpg")
    with store.transaction() as conn:  # as a rescan leaves it
        conn.execute("UPDATE photos SET status = 'missing' WHERE id = ?", (gone,))
    report = again(store, dest, read)
    assert report.removed == 1 and not (dest / "person_0002" / "bob2.jpg").exists()


@pytest.mark.parametrize("options", [{"crops": True}, {"mode": "copy"}])
def test_an_option_changed_writes_every_person_again(
    store: Store, library: Path, tmp_path: Path, read: list[int | None], options: dict[str, object]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    again(store, dest, read, **options)
    assert sorted(read, key=str) == [1, 2, None]


def test_files_deleted_or_edited_in_a_skipped_person_are_found_as_a_full_export_finds_them(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    settle(dest)
    # A link of alice's deleted (her folder's stamp tells), bob's page edited in place.
    entry = dest / "person_0001" / "IMG_0001.jpg"
    target = os.readlink(entry)
    entry.unlink()
    page = dest / "pages" / "person-2.html"
    page.write_text(page.read_text(encoding="utf-8") + "<!-- mine -->", encoding="utf-8")
    read.clear()
    report = export(store, dest)
    assert os.readlink(entry) == target and report.created == 1
    assert report.warnings == [f"{page}: {EDITED}"] and report.kept == 1
    assert page.read_text(encoding="utf-8").endswith("<!-- mine -->")
    assert sorted(read, key=str) == [1, 2]  # not the unknown faces
    # The page is the user's now: said again at every export, as before.
    settle(dest)
    read.clear()
    report = export(store, dest)
    assert report.warnings == [f"{page}: not written: a file that photocluster did not write is in the way"]
    assert read == [2]


def test_a_thumbnail_and_an_index_page_deleted_are_put_back(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    thumb = dest / next(iter(sorted(manifest_of(dest)["files"])))
    assert thumb.parent.parent.name == ".thumbs"
    thumb.unlink()
    (dest / "index.html").unlink()
    report = again(store, dest, read)
    assert thumb.is_file() and (dest / "index.html").is_file() and report.warnings == []
    assert len(read) == 1  # the person of the thumbnail; the lists are written again


def test_a_link_replaced_in_a_skipped_person_is_kept_as_the_users(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    settle(dest)
    entry = dest / "person_0002" / "bob1.jpg"
    entry.unlink()
    entry.symlink_to(library / "bob2.jpg")
    report = export(store, dest)
    assert report.kept == 1 and report.warnings == [f"{entry}: {EDITED}"]
    assert os.readlink(entry) == str(library / "bob2.jpg")


def test_index_json_deleted_is_written_again_whole(
    store: Store, library: Path, tmp_path: Path, read: list[int | None]
) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    (dest / "index.json").unlink()
    again(store, dest, read)
    assert sorted(read, key=str) == [1, 2, None]


def test_a_person_over_several_manifest_lines_is_skipped_or_read_whole(
    store: Store, library: Path, tmp_path: Path, read: list[int | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.exporter import index_json

    monkeypatch.setattr(index_json, "_SLICE", 2)  # alice's 4 entries and 5 files take 3 lines
    dest = tmp_path / "out"
    export(store, dest)
    assert len(Manifest.read(dest / EXPORT_MARKER).persons) == 3 + 2 + 1
    again(store, dest, read)
    assert read == []
    # Her last thumbnail (on her last line) deleted: she is read, and her lines all written anew.
    last = sorted(rel for rel in manifest_of(dest)["files"] if rel.startswith(".thumbs/"))
    alice = {f.id for f in store.member_faces(1)[0]}
    thumb = dest / next(rel for rel in reversed(last) if int(rel.split("/")[2].split("_")[0]) in alice)
    thumb.unlink()
    report = again(store, dest, read)
    assert read == [1] and thumb.is_file() and report.warnings == []
    assert again(store, dest, read).unchanged == report.unchanged and read == []
