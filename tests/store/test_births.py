"""Birth dates in the store: the migration, the correction and its undo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from photocluster.store import Store
from store.test_migrations import v2_database


def test_an_older_database_gets_no_birth_dates_and_its_old_corrections_undo(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    v2_database(db)
    with Store(db) as store:
        assert store.births() == {}
        with store.transaction() as conn:
            conn.execute("UPDATE persons SET born = '2001-02-03' WHERE id = 3")
        # Logged before birth dates existed: undo leaves the date as it is.
        assert store.undo() == "move 6 3"
        assert store.births() == {3: dt.date(2001, 2, 3)}


def test_set_birth_takes_the_earlier_faces_out_and_undo_puts_them_back(tmp_path: Path) -> None:
    db = tmp_path / "v2.db"
    v2_database(db)
    with Store(db) as store:
        with store.transaction() as conn:  # photo 1 from 1999, photo 2 from 2005
            conn.execute("UPDATE photos SET taken_at = '1999-05-05T10:00:00' WHERE id = 1")
            conn.execute("UPDATE photos SET taken_at = '2005-05-05T10:00:00' WHERE id = 2")
        assert store.set_birth(3, dt.date(2000, 1, 1), command="born 3 2000-01-01") == [2]
        assert store.face_persons() == {5: 8, 6: 3}
        assert store.birth_of(3) == dt.date(2000, 1, 1)
        assert store.first_days() == {3: dt.date(2005, 5, 5), 8: dt.date(1999, 5, 5)}
        assert store.undo() == "born 3 2000-01-01"
        assert store.face_persons() == {2: 3, 5: 8, 6: 3} and store.birth_of(3) is None
        # The pin of a face to the person goes with it.
        assert store.set_birth(3, dt.date(2006, 1, 1), command="born 3 2006-01-01") == [2, 6]
        assert store.pins() == {}
        store.undo()
        assert store.pins() == {6: 3}
