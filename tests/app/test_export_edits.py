"""An export never writes over, nor deletes, a file the user changed since photocluster wrote
it: photo entries in every mode, thumbnails, pages and index.json (real files)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from photocluster.app.export import export
from photocluster.cli import app
from photocluster.exporter.stamps import EDITED
from photocluster.store import Store

from .test_export import build_library, manifest_of

ENTRY = "person_0002/bob1.jpg"  # one photo, one person: bob's


@pytest.fixture
def library(store: Store, tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    build_library(store, root)
    return root


def edit_photo(path: Path) -> bytes:
    """What a photo editor does to a JPEG: new pixels, saved over it (a new file in its place)."""
    with Image.open(path) as im:
        edited = im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    edited.paste((0, 0, 0), (0, 0, 8, 8))
    tmp = path.with_name(path.name + ".tmp")
    edited.save(tmp, "JPEG", quality=70)
    os.replace(tmp, path)
    return path.read_bytes()


def kept_lines(report_warnings: list[str], dest: Path) -> list[str]:
    return [w for w in report_warnings if w.endswith(EDITED) and w.startswith(str(dest))]


def rename_bob(store: Store) -> None:
    """The next export puts bob's entries in a new folder: the old ones are no longer wanted."""
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Bob' WHERE id = 2")


def test_a_copy_the_user_edited_is_kept_and_never_deleted(store: Store, library: Path, tmp_path: Path) -> None:
    # Issue 24: `export X --mode copy`, edit an exported JPEG, export again: "1 updated",
    # the edit gone. Now: kept, said, and not deleted when the entry is no longer wanted.
    dest = tmp_path / "out"
    export(store, dest, "copy")
    mine = edit_photo(dest / ENTRY)
    again = export(store, dest, "copy")
    assert (again.updated, again.kept, again.removed) == (0, 1, 0)
    assert (dest / ENTRY).read_bytes() == mine
    assert kept_lines(again.warnings, dest) == [f"{dest / ENTRY}: {EDITED}"]
    # Bob moves to a folder of his name: his other entries move, the edited one stays.
    rename_bob(store)
    moved = export(store, dest, "copy")
    assert (dest / ENTRY).read_bytes() == mine
    assert (dest / "Bob" / "bob1.jpg").read_bytes() == (library / "bob1.jpg").read_bytes()
    assert not (dest / "person_0002" / "bob2.jpg").exists() and moved.removed == 2
    # It is the user's now: no longer in the manifest, never touched again.
    manifest = manifest_of(dest)
    assert ENTRY not in manifest["entries"] and ENTRY not in manifest["stamps"]
    export(store, dest, "copy")
    assert (dest / ENTRY).read_bytes() == mine


def test_a_copy_whose_original_changed_is_updated(store: Store, library: Path, tmp_path: Path) -> None:
    # Only the user's edits are kept: a copy of ours, stale because the original changed, is
    # replaced; so is one whose mtime alone changed (same content: still ours).
    dest = tmp_path / "out"
    export(store, dest, "copy")
    edit_photo(library / "bob1.jpg")
    os.utime(dest / "person_0002" / "bob2.jpg", ns=(1, 1))
    again = export(store, dest, "copy")
    assert (again.updated, again.kept) == (2, 0)
    assert (dest / ENTRY).read_bytes() == (library / "bob1.jpg").read_bytes()
    assert os.stat(dest / "person_0002" / "bob2.jpg").st_mtime_ns == os.stat(library / "bob2.jpg").st_mtime_ns


def test_an_entry_the_user_replaced_is_kept_in_every_mode(store: Store, library: Path, tmp_path: Path) -> None:
    for mode in ("symlink", "hardlink"):
        dest = tmp_path / mode
        export(store, dest, mode)
        entry = dest / ENTRY
        entry.unlink()
        shutil.copyfile(library / "stranger.jpg", entry)  # another photo in its place
        other = dest / "person_0002" / "bob2.jpg"
        other.unlink()
        os.symlink(library / "stranger.jpg", other)  # a link of the user's, elsewhere
        again = export(store, dest, mode)
        assert again.kept == 2 and again.updated == 0, mode
        assert entry.read_bytes() == (library / "stranger.jpg").read_bytes()
        assert os.readlink(other) == os.fspath(library / "stranger.jpg")
        rename_bob(store)
        export(store, dest, mode)
        assert entry.is_file() and other.is_symlink(), mode
        with store.transaction() as conn:
            conn.execute("UPDATE persons SET name = NULL WHERE id = 2")


def test_a_hardlinked_original_replaced_by_its_editor_is_linked_again(
    store: Store, library: Path, tmp_path: Path
) -> None:
    # The editor saves the original as a new file (new inode): the entry of ours still holds
    # the old one, untouched: it is ours, and linked to the new original.
    dest = tmp_path / "out"
    export(store, dest, "hardlink")
    edit_photo(library / "bob1.jpg")
    again = export(store, dest, "hardlink")
    assert (again.updated, again.kept) == (1, 0)
    assert os.stat(dest / ENTRY).st_ino == os.stat(library / "bob1.jpg").st_ino


def test_pages_index_and_thumbnails_the_user_edited_are_kept(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    export(store, dest)
    edited = {
        "index.html": "<p>my notes</p>",
        "pages/person-2.html": "<p>bob, annotated</p>",
        "index.json": '{"mine": true}\n',
    }
    for rel, text in edited.items():
        (dest / rel).write_text(text)
    thumbs = sorted((dest / ".thumbs").rglob("*.webp"))
    bob_thumb = next(t for t in thumbs if t.name.startswith(f"{store.person_face_ids(2)[0]}_"))
    bob_thumb.write_bytes(b"not a thumbnail any more")
    rename_bob(store)  # every page is rendered anew
    again = export(store, dest)
    for rel, text in edited.items():
        assert (dest / rel).read_text() == text, rel
    assert bob_thumb.read_bytes() == b"not a thumbnail any more"
    assert again.kept == 4
    assert sorted(kept_lines(again.warnings, dest)) == sorted(
        f"{dest / rel}: {EDITED}" for rel in [*edited, bob_thumb.relative_to(dest).as_posix()]
    )
    # They are the user's now; the pages of ours are still photocluster's.
    manifest = manifest_of(dest)
    assert not set(edited) & (set(manifest["files"]) | set(manifest["stamps"]))
    assert {"pages/person-1.html", "pages/doubt.html"} <= set(manifest["files"]) & set(manifest["stamps"])


def test_the_cli_says_what_it_kept(store: Store, library: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    runner = CliRunner()
    args = ["export", str(dest), "--mode", "copy", "--db", str(store.path)]
    assert runner.invoke(app, args).exit_code == 0
    edit_photo(dest / ENTRY)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(0 new, 0 updated, 0 removed, 7 unchanged, 1 kept as you changed them)" in result.stdout
    assert f"{dest / ENTRY}: {EDITED}" in result.stderr
    # The user's now: in the way of the entry, which the next export skips (and says so).
    result = runner.invoke(app, args)
    assert f"skipped {ENTRY}: a file that photocluster did not write is in the way" in result.stderr
    other = dest / "person_0002" / "bob2.jpg"
    edit_photo(other)
    doc = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert doc["kept"] == 1 and doc["warnings"] == [f"{other}: {EDITED}"]
