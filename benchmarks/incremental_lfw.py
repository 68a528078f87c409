"""Incremental clustering on real faces: a library that grows, placed a step at a time,
against one full run on the same faces.

    python benchmarks/incremental_lfw.py --db LFWDEV.db [--first 0.5 --steps 5 --seed 0]

``--db`` is a library that `photocluster scan` made of LFW's development half (lay it out
with ``../shared/lfw-dev/layout.py``, then ``photocluster scan LFWDEV --db LFWDEV.db``); it
is only read. Its photos are put in a random order (``--seed``) into a fresh library (the
store's schema, the rows as the scan wrote them), the first ``--first`` of them present: the
first ``clusters`` groups those (a full run). The rest come back ``--steps`` batches at a
time, each followed by ``clusters``, which places the new faces (an incremental run: each
batch is at most 20% of the library, as a library grows between scans). A copy of the final
library is then clustered whole (``clusters --full``). Each run is the real command in a
fresh process.

Prints one JSON object: each run's mode, seconds and persons; ``pairwise_f_vs_full`` and
``bcubed_f_vs_full`` (the incremental library's persons against the full run's, every face,
a face in no person counted alone), and pairwise F on the first run's faces and on the faces
added apart (no incremental run moves the first ones: their disagreement is the full run's
own drift from a run on fewer photos); the same against the truth for the faces of photos
with one face (the folder is the person), for both libraries.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from photocluster.eval.metrics import bcubed, pairwise
from photocluster.store import Store


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def build(source: Path, target: Path, seed: int) -> int:
    """A fresh library at ``target`` holding ``source``'s photos and faces in a random
    order (ids renumbered in it); every photo missing for now. Returns the photo count."""
    migrated = target.with_name("source.db")
    shutil.copy(source, migrated)
    with Store(migrated):  # brought to the current schema
        pass
    with Store(target):
        pass
    conn = sqlite3.connect(target)
    conn.execute("ATTACH DATABASE ? AS src", (str(migrated),))
    photo_ids = [r[0] for r in conn.execute("SELECT id FROM src.photos WHERE status = 'done' ORDER BY id")]
    order = np.random.default_rng(seed).permutation(len(photo_ids))
    conn.execute("CREATE TEMP TABLE perm (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    conn.executemany("INSERT INTO perm VALUES (?, ?)", ((photo_ids[k], rank + 1) for rank, k in enumerate(order)))
    photo_cols = [c for c in _columns(conn, "photos") if c != "id"]
    face_cols = [c for c in _columns(conn, "faces") if c not in ("id", "photo_id", "person_id")]
    with conn:
        conn.execute("INSERT INTO scans SELECT * FROM src.scans")
        conn.execute(
            f"INSERT INTO photos(id, {', '.join(photo_cols)}) SELECT perm.new, "
            f"{', '.join('p.' + c for c in photo_cols)} FROM src.photos p JOIN perm ON perm.old = p.id "
            "ORDER BY perm.new"
        )
        conn.execute("UPDATE photos SET status = 'missing'")
        conn.execute(
            f"INSERT INTO faces(photo_id, {', '.join(face_cols)}) SELECT perm.new, "
            f"{', '.join('f.' + c for c in face_cols)} FROM src.faces f JOIN perm ON perm.old = f.photo_id "
            "ORDER BY perm.new, f.id"
        )
    conn.close()
    migrated.unlink()
    return len(photo_ids)


def present(db: Path, upto: int) -> None:
    """Photos 1..upto (in the random order) present, as a scan that found them leaves them."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE photos SET status = 'done' WHERE id <= ?", (upto,))


_MAIN = "from photocluster.cli import main; main()"


def clusters(db: Path, *args: str) -> dict[str, object]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MAIN, "clusters", "--db", str(db), "--json", *args],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"clusters failed ({proc.returncode}): {proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout)
    return {
        "mode": doc.get("mode"),
        "why": doc.get("why"),
        "seconds": round(time.perf_counter() - start, 2),
        "persons": doc["persons"],
        "faces": doc["faces"],
    }


def persons(db: Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """(face ids, person id or -face id, the photo's folder when the photo has one face else '',
    photo ids: the order they came in)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT f.id, coalesce(f.person_id, -f.id), p.path, p.id, "
            "(SELECT count(*) FROM faces g WHERE g.photo_id = f.photo_id) FROM faces f "
            "JOIN photos p ON p.id = f.photo_id WHERE p.status = 'done' ORDER BY f.id"
        ).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    labels = np.array([r[1] for r in rows], dtype=np.int64)
    folders = [Path(bytes(r[2]).decode()).parent.name if r[4] == 1 else "" for r in rows]
    return ids, labels, folders, np.array([r[3] for r in rows], dtype=np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a scanned library of LFW's development half")
    ap.add_argument("--first", type=float, default=0.5, help="share of the photos in the first run")
    ap.add_argument("--steps", type=int, default=5, help="batches the rest come back in")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "grown.db"
        n = build(args.db, db, args.seed)
        first = round(args.first * n)
        present(db, first)
        runs = [clusters(db)]
        for cut in np.linspace(first, n, args.steps + 1)[1:].round().astype(int).tolist():
            present(db, cut)
            runs.append(clusters(db))
        full_db = Path(tmp) / "full.db"
        shutil.copy(db, full_db)
        full = clusters(full_db, "--full")
        ids, grown, folders, photo = persons(db)
        first_faces = photo <= first
        full_ids, everything, _, _ = persons(full_db)
        assert np.array_equal(ids, full_ids)
        one = np.array([bool(f) for f in folders])
        _, truth = np.unique(np.array(folders, dtype=object)[one].astype(str), return_inverse=True)
        result = {
            "photos": n,
            "faces": len(ids),
            "first_photos": first,
            "runs": runs,
            "full": full,
            "pairwise_f_vs_full": round(pairwise(everything, grown).f1, 4),
            # Precision: pairs placed together that the full run joins too; recall: the full
            # run's pairs placed together.
            "pairwise_p_r_vs_full": [
                round(pairwise(everything, grown).precision, 4),
                round(pairwise(everything, grown).recall, 4),
            ],
            "bcubed_f_vs_full": round(bcubed(everything, grown).f1, 4),
            # The faces of the first run (which no incremental run moves) against the full
            # run: how far a full run on more photos drifts from one on fewer, the part of
            # the disagreement no placing of new faces can remove; and the faces added.
            "pairwise_f_vs_full_first_faces": round(pairwise(everything[first_faces], grown[first_faces]).f1, 4),
            "pairwise_f_vs_full_added_faces": round(pairwise(everything[~first_faces], grown[~first_faces]).f1, 4),
            "one_face_photos": int(one.sum()),
            "pairwise_f_vs_truth": round(pairwise(truth, grown[one]).f1, 4),
            "full_pairwise_f_vs_truth": round(pairwise(truth, everything[one]).f1, 4),
            "bcubed_f_vs_truth": round(bcubed(truth, grown[one]).f1, 4),
            "full_bcubed_f_vs_truth": round(bcubed(truth, everything[one]).f1, 4),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
