"""Birth dates as facts (``photocluster born``): through real scans of photos whose dates
exiftool wrote, the CLI, the clustering, recognition, suggest, move, merge and undo.

The photos are flat colours and the fake embedder makes photos of one colour one person
(the same descriptor), so the only thing that keeps a photo out of that person is its date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FakeEmbedder, exiftool_write, write_photo
from photocluster.cli import app
from photocluster.core.ages import Age, age_at, parse_birth, photo_day
from photocluster.core.errors import UsageError
from photocluster.store import Store

runner = CliRunner()
KID = (200, 40, 40)
BIRTH = "2018-06-15"
BEFORE = ["2015:03:01 10:00:00", "2017:12:24 18:30:00"]  # an older sibling's photos, say
AFTER = ["2018:06:20 09:00:00", "2019:10:15 12:00:00", "2021:08:01 16:00:00", "2024:01:02 08:00:00"]


def run(db: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", str(db)])
    return result.exit_code, result.stdout, result.stderr


def dated(path: Path, when: str, color: tuple[int, int, int] = KID) -> Path:
    """A photo with EXIF DateTimeOriginal ``when`` (``YYYY:MM:DD HH:MM:SS``), written by exiftool."""
    write_photo(path, color)
    exiftool_write("-overwrite_original", f"-DateTimeOriginal={when}", path)
    return path


def scanned(db: Path, root: Path) -> None:
    code, _, err = run(db, "scan", str(root), "--workers", "1")
    assert code == 0, err


def persons_of(db: Path) -> dict[str, int | None]:
    """photo file name -> its face's person."""
    with Store(db) as store:
        names = {}
        for face, _ in store.faces():
            names[face.photo_path.name] = face.person_id
        return names


@pytest.fixture
def family(tmp_path: Path, fake_embedder: FakeEmbedder) -> tuple[Path, Path, int]:
    """A scanned, clustered library: six photos of one colour (one "person"), two of them
    dated before the birth; returns (database, photo folder, the person's id)."""
    root = tmp_path / "photos"
    for k, when in enumerate(BEFORE):
        dated(root / f"before{k}.jpg", when)
    for k, when in enumerate(AFTER):
        dated(root / f"after{k}.jpg", when)
    db = tmp_path / "lib.db"
    scanned(db, root)
    code, _, err = run(db, "clusters")
    assert code == 0, err
    people = persons_of(db)
    assert len(set(people.values())) == 1 and None not in people.values(), people  # one person, before the fact
    pid = next(iter(people.values()))
    assert pid is not None
    return db, root, pid


def test_the_scan_stores_the_exif_date_exiftool_wrote(family: tuple[Path, Path, int]) -> None:
    db, root, _ = family
    with Store(db) as store:
        days = {p.name: d for _, (p, d) in store.face_days(f.id for f, _ in store.faces()).items()}
    assert days["before0.jpg"] == dt.date(2015, 3, 1)
    assert days["after3.jpg"] == dt.date(2024, 1, 2)


def test_born_takes_the_earlier_faces_out_and_clustering_keeps_them_out(family: tuple[Path, Path, int]) -> None:
    db, _, pid = family
    code, out, err = run(db, "born", str(pid), BIRTH)
    assert code == 0, err
    assert f"born {pid} {BIRTH}" in out and "2 face(s) dated before it left the person" in out
    people = persons_of(db)
    assert {n for n, p in people.items() if p == pid} == {f"after{k}.jpg" for k in range(4)}
    # Identical descriptors, and yet: every run keeps the photos dated before the birth out.
    for args in (["clusters"], ["clusters", "--threshold", "0.9"], ["clusters", "--min-size", "1"]):
        code, _, err = run(db, *args)
        assert code == 0, err
        people = persons_of(db)
        assert {n for n, p in people.items() if p == pid} == {f"after{k}.jpg" for k in range(4)}, args
        assert people["before0.jpg"] != pid and people["before1.jpg"] != pid
    code, out, _ = run(db, "history", "--json")
    assert json.loads(out)[0]["command"] == f"born {pid} {BIRTH}"


def test_a_face_dated_before_the_birth_cannot_be_moved_in(family: tuple[Path, Path, int]) -> None:
    db, root, pid = family
    run(db, "born", str(pid), BIRTH)
    run(db, "name", str(pid), "Emma")
    with Store(db) as store:
        early = next(f.id for f, _ in store.faces() if f.photo_path.name == "before1.jpg")
        corrections = len(store.history())
    code, out, err = run(db, "move", str(early), "Emma")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert os.fspath(root / "before1.jpg") in line and "2017-12-24" in line and BIRTH in line and "Emma" in line
    with Store(db) as store:
        assert len(store.history()) == corrections  # nothing recorded
    assert persons_of(db)["before1.jpg"] != pid


def test_merge_with_a_person_dated_before_the_birth_is_refused(family: tuple[Path, Path, int]) -> None:
    db, root, pid = family
    run(db, "born", str(pid), BIRTH)
    run(db, "clusters")  # the two early photos: a person of their own (identical descriptors)
    other = persons_of(db)["before0.jpg"]
    assert other is not None and other != pid
    for args in ([str(pid), str(other)], [str(other), str(pid)]):
        code, _, err = run(db, "merge", *args)
        assert code == 2 and "before" in err and BIRTH in err, err
    assert persons_of(db)["before0.jpg"] == other


def test_suggest_never_proposes_an_impossible_age(family: tuple[Path, Path, int]) -> None:
    db, _, pid = family
    run(db, "born", str(pid), BIRTH)
    run(db, "clusters")
    other = persons_of(db)["before0.jpg"]
    code, out, _ = run(db, "suggest", "--json")
    assert code == 0
    pairs = [{s["a"]["id"], s["b"]["id"]} for s in json.loads(out)]
    assert {pid, other} not in pairs
    # Without the fact the two (one descriptor) are the first suggestion.
    run(db, "born", str(pid), "--clear")
    code, out, _ = run(db, "suggest", "--json")
    assert {pid, other} in [{s["a"]["id"], s["b"]["id"]} for s in json.loads(out)]


def test_recognition_never_assigns_a_face_dated_before_the_birth(family: tuple[Path, Path, int]) -> None:
    db, root, pid = family
    run(db, "born", str(pid), BIRTH)
    run(db, "name", str(pid), "Emma")
    dated(root / "new-before.jpg", "2016:07:04 12:00:00")
    dated(root / "new-after.jpg", "2022:07:04 12:00:00")
    scanned(db, root)  # recognition runs at the end of the scan
    people = persons_of(db)
    assert people["new-after.jpg"] == pid  # recognition works...
    assert people["new-before.jpg"] is None  # ...and keeps the fact


def test_a_photo_without_exif_date_is_dated_by_its_file(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    root = tmp_path / "photos"
    for k, when in enumerate(AFTER[:2]):
        dated(root / f"after{k}.jpg", when)
    old = write_photo(root / "scanned-print.jpg", KID)  # no EXIF: the file's day counts
    stamp = dt.datetime(2010, 5, 5, 12).timestamp()
    os.utime(old, (stamp, stamp))
    db = tmp_path / "lib.db"
    scanned(db, root)
    run(db, "clusters")
    pid = persons_of(db)["after0.jpg"]
    assert pid is not None and persons_of(db)["scanned-print.jpg"] == pid
    code, out, _ = run(db, "born", str(pid), BIRTH)
    assert code == 0 and "1 face(s)" in out
    assert persons_of(db)["scanned-print.jpg"] is None


def test_born_clear_and_undo(family: tuple[Path, Path, int]) -> None:
    db, _, pid = family
    before = persons_of(db)
    run(db, "born", str(pid), BIRTH)
    code, out, _ = run(db, "undo")
    assert code == 0 and f"Undone: born {pid} {BIRTH}" in out
    assert persons_of(db) == before  # the faces taken out are back
    with Store(db) as store:
        assert store.birth_of(pid) is None
    # Set, cleared: the fact is gone and the next clustering puts the photos together again.
    run(db, "born", str(pid), BIRTH)
    code, out, _ = run(db, "born", str(pid), "--clear")
    assert code == 0 and f"born {pid} --clear" in out
    with Store(db) as store:
        assert store.birth_of(pid) is None
    run(db, "clusters")
    assert set(persons_of(db).values()) == {pid}
    # Undo of the --clear brings the date back.
    run(db, "born", str(pid), BIRTH)
    run(db, "born", str(pid), "2018-07-01")
    run(db, "undo")
    with Store(db) as store:
        assert store.birth_of(pid) == dt.date(2018, 6, 15)


def test_merge_checks_every_face_against_the_birth_date(family: tuple[Path, Path, int]) -> None:
    db, root, pid = family
    dated(root / "other.jpg", "2019:01:01 10:00:00", color=(20, 20, 200))
    dated(root / "other2.jpg", "2019:02:01 10:00:00", color=(20, 20, 200))
    scanned(db, root)
    run(db, "clusters")
    other = persons_of(db)["other.jpg"]
    assert other is not None and other != pid
    run(db, "born", str(other), "2018-12-01")
    # Either way round: pid's photos from 2015 on are before the birth date of the merge.
    for args in ([str(pid), str(other)], [str(other), str(pid)]):
        code, _, err = run(db, "merge", *args)
        assert code == 2 and f"before person_{other:04d} was born (2018-12-01)" in err, err
    # Two people with different birth dates are never merged.
    run(db, "born", str(pid), BIRTH)
    code, _, err = run(db, "merge", str(pid), str(other))
    assert code == 2 and "different birth dates" in err
    assert persons_of(db)["other.jpg"] == other


def test_merge_carries_the_birth_date_and_undo_puts_it_back(family: tuple[Path, Path, int]) -> None:
    db, root, pid = family
    dated(root / "late.jpg", "2023:01:01 10:00:00", color=(20, 200, 20))
    dated(root / "late2.jpg", "2023:02:01 10:00:00", color=(20, 200, 20))
    scanned(db, root)
    run(db, "clusters")
    other = persons_of(db)["late.jpg"]
    assert other is not None
    run(db, "born", str(other), "2022-01-01")
    run(db, "born", str(pid), "2015-01-01")
    run(db, "born", str(pid), "--clear")
    code, _, err = run(db, "merge", str(pid), str(other))
    assert code == 2  # pid's photos from 2015 are before 2022
    code, _, err = run(db, "merge", str(other), str(pid))
    assert code == 2
    # A birth date given to the person merged in is the merged person's.
    run(db, "born", str(other), "2014-01-01")
    code, _, err = run(db, "merge", str(pid), str(other))
    assert code == 0, err
    with Store(db) as store:
        assert store.birth_of(pid) == dt.date(2014, 1, 1)
    run(db, "undo")
    with Store(db) as store:
        assert store.birth_of(pid) is None and store.birth_of(other) == dt.date(2014, 1, 1)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["2019-13-01"], "not a date"),
        (["2019-02-30"], "not a date"),
        (["31/05/2019"], "expected YYYY-MM-DD"),
        (["yesterday"], "expected YYYY-MM-DD"),
        (["2999-01-01"], "in the future"),
        ([], "give a birth date"),
        (["2019-01-01", "--clear"], "give a birth date"),
    ],
)
def test_bad_birth_dates_are_one_line_errors(family: tuple[Path, Path, int], args: list[str], says: str) -> None:
    db, _, pid = family
    code, out, err = run(db, "born", str(pid), *args)
    assert code == 2 and out == ""
    assert says in err and err.count("\n") == 1 and "Traceback" not in err
    with Store(db) as store:
        assert store.birth_of(pid) is None and store.history() == []


def test_born_names_a_person_by_name_and_refuses_an_unknown_one(family: tuple[Path, Path, int]) -> None:
    db, _, pid = family
    run(db, "name", str(pid), "Emma")
    code, _, err = run(db, "born", "emma", BIRTH)
    assert code == 0, err
    code, _, err = run(db, "born", "Nobody", BIRTH)
    assert code == 2 and "no person named 'Nobody'" in err


def test_faces_lists_the_age_at_each_photo(family: tuple[Path, Path, int]) -> None:
    db, _, pid = family
    code, out, _ = run(db, "faces", str(pid), "--json")
    assert '"age"' not in out and '"taken"' not in out  # no birth date: no age
    run(db, "born", str(pid), BIRTH)
    code, out, _ = run(db, "faces", str(pid), "--json")
    rows = {Path(r["photo"]).name: r for r in json.loads(out)}
    assert rows["after0.jpg"]["taken"] == "2018-06-20" and rows["after0.jpg"]["age"]["text"] == "5 d"
    assert rows["after1.jpg"]["age"] == {"years": 1, "months": 4, "text": "1 y 4 m"}
    assert rows["after3.jpg"]["age"] == {"years": 5, "months": 6, "text": "5 y 6 m"}
    code, out, _ = run(db, "faces", str(pid))
    assert f"born {BIRTH}" in out and "1 y 4 m" in out and "3 y 1 m" in out


# -- the dates and ages themselves --------------------------------------------------------


def test_age_at() -> None:
    born = dt.date(2019, 1, 31)
    assert age_at(born, dt.date(2019, 1, 30)) is None
    assert age_at(born, born) == Age(0, 0, 0)
    assert age_at(born, dt.date(2019, 2, 28)) == Age(0, 0, 28)
    assert age_at(born, dt.date(2019, 3, 1)) == Age(0, 1, 1)
    assert age_at(born, dt.date(2022, 6, 2)) == Age(3, 4, 2)
    assert age_at(dt.date(2020, 2, 29), dt.date(2021, 2, 28)) == Age(0, 11, 30)
    assert age_at(dt.date(2020, 2, 29), dt.date(2021, 3, 1)) == Age(1, 0, 1)
    assert [Age(0, 0, 12).label, Age(0, 7, 3).label, Age(3, 4, 0).label, Age(12, 2, 0).label] == [
        "12 d",
        "7 m",
        "3 y 4 m",
        "age 12",
    ]


def test_photo_day_prefers_the_exif_date() -> None:
    stamp = int(dt.datetime(2011, 4, 5, 12).timestamp() * 1e9)
    assert photo_day("2009-08-07T10:11:12", stamp) == dt.date(2009, 8, 7)
    assert photo_day(None, stamp) == dt.date(2011, 4, 5)
    assert photo_day("2009-02-30T10:11:12", stamp) == dt.date(2011, 4, 5)  # not a date: the file's


def test_parse_birth() -> None:
    assert parse_birth(" 2019-05-31 ", today=dt.date(2020, 1, 1)) == dt.date(2019, 5, 31)
    assert parse_birth("2020-01-01", today=dt.date(2020, 1, 1)) == dt.date(2020, 1, 1)
    with pytest.raises(UsageError, match="in the future"):
        parse_birth("2020-01-02", today=dt.date(2020, 1, 1))
