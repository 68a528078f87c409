"""benchmarks/views_int8.py: the int8 graph it times is the six-view graph quantised, and the
labelled faces it scores are each photo's centred face, with its age group."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import onnx

from photocluster.detect.engine.dlib_format import AddPrev, Conv, Fc, Layer, Pool, Relu, Tag
from photocluster.detect.engine.onnx_graph import build_views_model, make_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from views_int8 import describe, labelled, quantised


def small_network(rng: np.random.Generator) -> list[Layer]:
    def conv(i: int, o: int, stride: int, pad: int) -> Conv:
        weight = rng.normal(0, 0.3, size=(o, i, 3, 3)).astype(np.float32)
        return Conv(weight, rng.normal(0, 0.1, size=o).astype(np.float32), (stride, stride), (pad, pad))

    stem: list[Layer] = [conv(3, 8, 2, 0), Relu(), Pool(True, (2, 2), (2, 2), (0, 0))]
    block: list[Layer] = [Tag(1), conv(8, 8, 1, 1), Relu(), conv(8, 8, 1, 1), AddPrev(1), Relu()]
    fc = Fc(rng.normal(size=(8, 4)).astype(np.float32), None)
    return [*stem, *block, Pool(False, (0, 0), (1, 1), (0, 0)), fc]


def test_the_int8_graph_is_the_views_graph_quantised() -> None:
    rng = np.random.default_rng(4)
    model = build_views_model(small_network(rng), (120.0, 115.0, 100.0), 40, 4, "small")
    chips = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(12)]
    int8 = quantised(model, chips[:10])
    ops = {node.op_type for node in onnx.load_from_string(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    sessions = make_session(model, 1), make_session(int8, 1)
    for chip in chips[10:]:
        want, got = (describe(s, chip) for s in sessions)
        assert want.shape == got.shape == (4,)
        # 8 bits a value: close to the float32 graph, not equal to it
        assert 0 < np.abs(got - want).max() <= 0.05 * np.abs(want).max() + 1e-3


def test_labelled_faces_are_each_photos_face_nearest_its_centre_with_its_age_group(tmp_path: Path) -> None:
    db = tmp_path / "library.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, path BLOB, width INT, height INT, status TEXT)")
    conn.execute(
        "CREATE TABLE faces (id INTEGER PRIMARY KEY, photo_id INT, left REAL, top REAL, right REAL, bottom REAL, "
        "landmarks BLOB)"
    )
    photos = [(1, b"/set/ann/a_1.png", 100, 100, "done"), (2, b"/set/bob/b_1.png", 100, 100, "done")]
    photos.append((3, b"/set/bob/b_2.png", 100, 100, "pending"))
    conn.executemany("INSERT INTO photos VALUES (?, ?, ?, ?, ?)", photos)
    points = np.zeros((5, 2), dtype="<f4").tobytes()
    faces = [(10, 1, 0, 0, 20, 20), (11, 1, 40, 40, 60, 60), (12, 2, 30, 30, 70, 70), (13, 3, 40, 40, 60, 60)]
    conn.executemany("INSERT INTO faces VALUES (?, ?, ?, ?, ?, ?, ?)", [(*f, points) for f in faces])
    conn.commit()
    conn.close()
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "relative_path,identity,age_group\nann/a_1.png,ann,young\nbob/b_1.png,bob,adult\nbob/b_2.png,bob,young\n"
    )
    ids, who, young = labelled(db, labels)
    # a_1's centred face (11, not the corner one); b_2 is not scanned yet
    assert ids.tolist() == [11, 12] and who.tolist() == ["ann", "bob"] and young.tolist() == [True, False]
