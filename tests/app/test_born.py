"""Birth dates as facts (``photocluster born``): through real scans of photos whose dates
exiftool wrote, the CLI, the clustering, recognition, suggest, move, merge and undo.

The photos are flat colours and the fake embedder makes photos of one colour one person
(the same descriptor), so the only thing that keeps a photo out of that person is its date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
from exporter.test_golden_pages import GOLDEN as GOLDEN_PAGES
from exporter.test_golden_pages import ORIGIN, TOKEN, named_library, normalise
from starlette.testclient import TestClient
from typer.testing import CliRunner

from app.test_export import GOLDEN as GOLDEN_INDEX
from app.test_export import build_library, validate
from conftest import FakeEmbedder, exiftool_write, write_photo
from photocluster.app.corrections import set_born
from photocluster.app.export import export
from photocluster.cli import app
from photocluster.core.ages import Age, age_at, parse_birth, photo_day
from photocluster.core.errors import UsageError
from photocluster.store import Store, path_key
from photocluster.version import __version__
from photocluster.web.app import create_app

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
    db, _root, _ = family
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
    db, _root, pid = family
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
    code, out, _ = run(db, "undo", "--yes")
    assert code == 0 and f"born {pid} {BIRTH}" in out and out.startswith("Undone: #")
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
    run(db, "undo", "--yes")
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
    run(db, "undo", "--yes")
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
    assert code == 0 and '"age"' not in out and '"taken"' not in out  # no birth date: no age
    run(db, "born", str(pid), BIRTH)
    _, out, _ = run(db, "faces", str(pid), "--json")
    rows = {Path(r["photo"]).name: r for r in json.loads(out)}
    assert rows["after0.jpg"]["taken"] == "2018-06-20" and rows["after0.jpg"]["age"]["text"] == "5 d"
    assert rows["after1.jpg"]["age"] == {"years": 1, "months": 4, "text": "1 y 4 m"}
    assert rows["after3.jpg"]["age"] == {"years": 5, "months": 6, "text": "5 y 6 m"}
    code, out, _ = run(db, "faces", str(pid))
    assert code == 0 and f"born {BIRTH}" in out and "1 y 4 m" in out and "3 y 1 m" in out


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


# -- index.json and the pages: golden, but for the person with a birth date ---------------

# Alice (person 1 of the golden library) and the days her photos were taken.
ALICE_BORN = "2019-11-20"
ALICE_DAYS = {
    "2020/IMG_0001.jpg": ("2020-03-01", {"years": 0, "months": 3, "text": "3 m"}),
    "2021/IMG_0001.jpg": ("2021-07-04", {"years": 1, "months": 7, "text": "1 y 7 m"}),
    "2021/beach.png": ("2021-08-01", {"years": 1, "months": 8, "text": "1 y 8 m"}),
    "2022/alice.jpg": ("2022-12-25", {"years": 3, "months": 1, "text": "3 y 1 m"}),
}
_AGE_MARKUP = re.compile(
    r' · born <span class="born">[0-9-]+</span>| <span class="age" title="taken [0-9-]+">[^<]*</span>'
)


def date_the_golden_library(store: Store, root: Path) -> None:
    """The golden library's photos with EXIF dates (as a scan stores them), Alice born."""
    with store.transaction() as conn:
        for name, (day, _) in ALICE_DAYS.items():
            conn.execute("UPDATE photos SET taken_at = ? WHERE path = ?", (f"{day}T12:00:00", path_key(root / name)))
    set_born(store, "1", ALICE_BORN)


def test_index_json_is_the_golden_one_plus_the_birth_date_and_ages(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    build_library(store, root)
    date_the_golden_library(store, root)
    with store.transaction() as conn:
        conn.execute("UPDATE persons SET name = 'Zoë <Z>' WHERE id = 2")
    dest = tmp_path / "out"
    export(store, dest)
    text = (dest / "index.json").read_text(encoding="utf-8").replace(str(tmp_path), "<TMP>")
    doc = json.loads(text.replace(f'"version": "{__version__}"', '"version": "<VERSION>"'))
    validate(doc)
    alice = doc["persons"][0]
    assert alice["id"] == 1 and alice["born"] == ALICE_BORN
    got = {f["photo"].removeprefix("<TMP>/photos/"): (f.pop("taken"), f.pop("age")) for f in alice["faces"]}
    assert got == ALICE_DAYS
    del alice["born"]
    # Everything else is the golden document, and no other person or face has a date.
    assert doc == json.loads(GOLDEN_INDEX.read_text(encoding="utf-8"))


def test_pages_are_the_golden_ones_plus_the_ages_of_the_person_with_a_birth_date(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    named_library(store, root)
    date_the_golden_library(store, root)
    dest = tmp_path / "out"
    export(store, dest)
    alice = normalise((dest / "pages" / "person-1.html").read_text(encoding="utf-8"), tmp_path)
    assert f'· born <span class="born">{ALICE_BORN}</span>' in alice
    for day, age in ALICE_DAYS.values():
        assert f'<span class="age" title="taken {day}">{age["text"]}</span>' in alice
    golden = GOLDEN_PAGES / "static"
    assert _AGE_MARKUP.sub("", alice) == (golden / "pages__person-1.html").read_text(encoding="utf-8")
    for rel in ("index.html", "pages/person-2.html", "pages/doubt.html", "pages/unknown.html"):
        page = normalise((dest / rel).read_text(encoding="utf-8"), tmp_path)
        assert page == (golden / rel.replace("/", "__")).read_text(encoding="utf-8"), rel
    # The review app's page of the person: the same ages.
    with TestClient(create_app(store.path, TOKEN), base_url=ORIGIN, follow_redirects=False) as client:
        live = normalise(client.get("/person/1", params={"token": TOKEN}).text, tmp_path)
        assert _AGE_MARKUP.sub("", live) == (GOLDEN_PAGES / "review" / "person-1.html").read_text(encoding="utf-8")
        assert live != _AGE_MARKUP.sub("", live)
        for day, age in ALICE_DAYS.values():
            assert f'<span class="age" title="taken {day}">{age["text"]}</span>' in live


def test_the_review_app_refuses_to_move_faces_dated_before_the_birth(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    named_library(store, root)
    date_the_golden_library(store, root)
    with store.transaction() as conn:  # Bob's photos: 2010, before Alice was born
        conn.execute("UPDATE photos SET taken_at = '2010-01-01T10:00:00' WHERE taken_at IS NULL")
    bob = [f for f, _ in store.faces() if f.person_id == 2]
    with TestClient(create_app(store.path, TOKEN), base_url=ORIGIN, follow_redirects=False) as client:
        form = {"token": TOKEN, "do": "move", "person": "1", "face": [str(f.id) for f in bob]}
        response = client.post("/action/faces", data=form, headers={"origin": ORIGIN})
        assert response.status_code == 303
        message = response.headers["location"]
        assert "Not+done" in message and "2010-01-01" in message and ALICE_BORN in message
    assert {f.person_id for f, _ in store.faces() if f.id in {b.id for b in bob}} == {2}  # none moved


# -- the real models, on real faces ---------------------------------------------------------


@pytest.mark.models
def test_real_faces_dated_before_the_birth_never_join_the_person(fixtures: Path, tmp_path: Path) -> None:
    """One man's photos (dlib's John Salley), dated by exiftool: three before the birth date
    given, five after; then two more, one each side, recognised by the scan."""
    johns = sorted((fixtures / "dlib-johns" / "John_Salley").glob("*.jpg"))
    root = tmp_path / "photos"
    root.mkdir()
    dates = ["2005:01:01 10:00:00"] * 3 + ["2012:01:01 10:00:00"] * 5
    for k, (src, when) in enumerate(zip(johns[:8], dates, strict=True)):
        exiftool_write("-o", root / f"{k}.jpg", f"-DateTimeOriginal={when}", src)
    db = tmp_path / "lib.db"
    scanned(db, root)
    run(db, "clusters")
    people = persons_of(db)
    pid = people["5.jpg"]
    assert pid is not None and sum(p == pid for p in people.values()) >= 6  # one man, before the fact
    code, _, err = run(db, "born", str(pid), "2010-01-01")
    assert code == 0, err
    run(db, "name", str(pid), "John")
    for args in (["clusters"], ["clusters", "--threshold", "0.6"]):
        run(db, *args)
        people = persons_of(db)
        assert not {"0.jpg", "1.jpg", "2.jpg"} & {n for n, p in people.items() if p == pid}, args
        assert sum(p == pid for p in people.values()) >= 4
    exiftool_write("-o", root / "new-early.jpg", "-DateTimeOriginal=2006:06:06 10:00:00", johns[8])
    exiftool_write("-o", root / "new-late.jpg", "-DateTimeOriginal=2016:06:06 10:00:00", johns[9])
    scanned(db, root)
    people = persons_of(db)
    assert people["new-early.jpg"] != pid
    assert people["new-late.jpg"] == pid
