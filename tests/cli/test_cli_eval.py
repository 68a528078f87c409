"""``photocluster eval pairs|clusters`` and ``calibrate`` in-process, with a fake embedder.

The fake gives one face per photo with an embedding set by the photo's colour (so photos
of one colour are one person), and no face at all in photos narrower than 40 px; the
fallback is faked the same way, from the colour.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import FakeEmbedder, fake_embedding, make_face, write_photo
from photocluster.cli import app
from photocluster.core.config import DetectionSettings
from photocluster.core.types import Box, Face
from photocluster.detect import faces as faces_module
from photocluster.detect.images import DecodedImage

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def colour_seed(image: DecodedImage) -> str:
    mean = image.pixels.reshape(-1, 3).mean(axis=0)
    return "-".join(str(int(c) // 32) for c in mean)


class SmallPhotosHaveNoFace(FakeEmbedder):
    def __call__(self, image: DecodedImage, settings: DetectionSettings) -> list[Face]:
        if image.width < 40:
            self.calls += 1
            return []
        return super().__call__(image, settings)


@pytest.fixture
def embedder(monkeypatch: pytest.MonkeyPatch) -> SmallPhotosHaveNoFace:
    fake = SmallPhotosHaveNoFace()
    monkeypatch.setattr(faces_module, "analyze_pixels", fake)

    def embed_box(image: DecodedImage, box: Box, engine: str = "auto") -> Face:
        face = make_face(fake_embedding(colour_seed(image)), (box.left, box.top, box.right, box.bottom))
        return Face(face.box, 0.0, face.landmarks, face.embedding)

    monkeypatch.setattr(faces_module, "embed_box", embed_box)
    return fake


RED, BLUE, GREEN = (200, 20, 40), (20, 20, 200), (20, 200, 20)


@pytest.fixture
def lfw(tmp_path: Path) -> Path:
    """ann: 3 red photos, bob: 2 blue, cat: 2 green, the second only 32 px wide (no face)."""
    root = tmp_path / "lfw"
    for k in (1, 2, 3):
        write_photo(root / "ann" / f"ann_{k:04d}.jpg", (RED[0], RED[1], RED[2] + 4 * k))
    for k in (1, 2):
        write_photo(root / "bob" / f"bob_{k:04d}.jpg", (BLUE[0] + 3 * k, BLUE[1], BLUE[2]))
    write_photo(root / "cat" / "cat_0001.jpg", GREEN)
    write_photo(root / "cat" / "cat_0002.jpg", GREEN, size=(32, 24))
    return root


PAIRS = """8
ann\t1\t2
ann\t1\t3
bob\t1\t2
cat\t1\t2
ann\t1\tbob\t1
ann\t2\tcat\t1
bob\t2\tcat\t2
ann\t3\tcat\t2
"""


def test_eval_pairs_json_strict_and_fallback(lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    db = str(tmp_path / "eval.db")
    args = ["eval", "pairs", "--root", str(lfw), "--pairs", str(pairs), "--workers", "1", "--db", db, "--json"]
    code, out, err = run(*args)
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["pairs"], doc["same_pairs"], doc["different_pairs"], doc["images"]) == (8, 4, 4, 7)
    assert (doc["folds"], doc["folds_from_file"], doc["threshold"]) == (4, False, 0.6)
    assert doc["no_face"] == ["cat/cat_0002.jpg"] and doc["no_face_count"] == 1
    # Strict: the 3 pairs with cat_0002 are wrong; every other pair is right.
    strict = doc["strict"]
    assert (strict["accuracy"], strict["wrong"], strict["missing_pairs"]) == (0.625, 3, 3)
    # Different pairs with cat_0002 are accepted at any threshold: no TAR without a false accept.
    assert strict["tar"] == 0.0 and strict["tar_threshold"] is None
    # Fallback: cat_0002 is embedded from its centre, and is green like cat_0001.
    fallback = doc["fallback"]
    assert (fallback["accuracy"], fallback["wrong"], fallback["missing_pairs"]) == (1.0, 0, 0)
    assert (fallback["roc_auc"], fallback["cv_accuracy"], fallback["tar"]) == (1.0, 1.0, 1.0)
    assert doc["scan"]["analysed"] == 7
    calls = embedder.calls

    # A second run on the same --db reuses every scan.
    code, out, err = run(*args)
    assert code == 0, err
    again = json.loads(out)
    assert (again["scan"]["analysed"], again["scan"]["reused"]) == (0, 7)
    assert embedder.calls == calls
    assert again["strict"] == strict and again["fallback"] == fallback


def test_eval_pairs_table(lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(PAIRS)
    code, out, err = run("eval", "pairs", "--root", str(lfw), "--pairs", str(pairs), "--workers", "1")
    assert code == 0, err
    assert "8 pairs (4 same, 4 different) on 7 images; no face found in 1" in out
    assert "Strict" in out and "With fallback" in out and "Accuracy at 0.6" in out
    assert "0.6250" in out and "1.0000" in out
    assert "No face found in 1 image: cat/cat_0002.jpg" in out


def test_eval_clusters_json(lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    # dan's one photo is ann's colour: a cluster that mixes two identities.
    write_photo(lfw / "dan" / "dan_0001.jpg", (RED[0], RED[1], RED[2] + 2))
    code, out, err = run("eval", "clusters", "--root", str(lfw), "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    # Clusters: ann 1-3 + dan 1, bob 1-2, cat 1, cat 2 (no face: a singleton).
    assert (doc["images"], doc["identities"], doc["clusters"], doc["singletons"]) == (8, 4, 4, 2)
    # Pairs claimed: 6 + 1 = 7, right: 3 + 1 = 4; true pairs: 3 + 1 + 1 = 5.
    assert doc["pairwise"] == {
        "precision": round(4 / 7, 6),
        "recall": 0.8,
        "f1": round(2 * (4 / 7) * 0.8 / (4 / 7 + 0.8), 6),
    }
    # BCubed precision: ann 3 x 3/4, dan 1/4, others 1 -> (9/4 + 1/4 + 4) / 8; recall: cat 2 x 1/2, others 1.
    assert doc["bcubed"]["precision"] == round((9 / 4 + 1 / 4 + 4) / 8, 6)
    assert doc["bcubed"]["recall"] == round(7 / 8, 6)
    assert doc["no_face"] == ["cat/cat_0002.jpg"]
    assert doc["mixed_clusters"] == [
        {
            "size": 4,
            "identities": {"ann": 3, "dan": 1},
            "files": [
                {"path": "ann/ann_0001.jpg", "identity": "ann"},
                {"path": "ann/ann_0002.jpg", "identity": "ann"},
                {"path": "ann/ann_0003.jpg", "identity": "ann"},
                {"path": "dan/dan_0001.jpg", "identity": "dan"},
            ],
        }
    ]

    code, out, err = run("eval", "clusters", "--root", str(lfw), "--workers", "1")
    assert code == 0, err
    assert "Clusters / identities" in out and "4 / 4" in out
    assert "ann (3), dan (1)" in out and "dan/dan_0001.jpg (dan)" in out


def test_eval_clusters_with_a_labels_csv(lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "relative_path,identity\nann/ann_0001.jpg,ann\nann/ann_0002.jpg,ann\nbob/bob_0001.jpg,bob\n"
        "bob/bob_0002.jpg,<unlabeled>\ncat/cat_0001.jpg,cat;ann\n"
    )
    code, out, err = run("eval", "clusters", "--root", str(lfw), "--labels", str(labels), "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["images"], doc["identities"], doc["clusters"], doc["skipped_labels"]) == (3, 2, 2, 2)
    assert doc["pairwise"]["f1"] == 1.0 and doc["nmi"] == 1.0


def test_calibrate_json_and_plot(lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    png = tmp_path / "cal.png"
    code, out, err = run(
        "calibrate", "--root", str(lfw), "--workers", "1", "--start", "0.4", "--stop", "0.8", "--step", "0.1",
        "--plot", str(png), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert [r["threshold"] for r in doc["rows"]] == [0.4, 0.5, 0.6, 0.7, 0.8]
    # Same person: distance 0; different people: ~1.4. Every threshold here is perfect
    # apart from cat_0002 (no face): the middle one is recommended.
    assert {r["bcubed"]["f1"] for r in doc["rows"]} == {doc["rows"][0]["bcubed"]["f1"]}
    assert doc["recommended"] == 0.6
    assert doc["plot"] == str(png)
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert im.size == (900, 560)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20
    assert 0.01 < np.mean(np.any(pixels < 250, axis=2)) < 0.5

    code, out, err = run("calibrate", "--root", str(lfw), "--workers", "1", "--start", "0.4", "--step", "0.1")
    assert code == 0, err
    assert "Recommended threshold: 0.6" in out and "0.6 *" in out


def test_eval_help_has_examples() -> None:
    for args, example in (
        (["eval", "--help"], "Example: photocluster eval pairs"),
        (["eval", "pairs", "--help"], "Example: photocluster eval pairs"),
        (["eval", "clusters", "--help"], "Example: photocluster eval clusters"),
        (["calibrate", "--help"], "Example: photocluster calibrate"),
    ):
        code, out, _ = run(*args)
        assert code == 0 and example in out, args


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2\nann 1 2\nann 1 bob 1 2\n", "pairs.txt:3: expected 'name n1 n2' (same person) or 'name1 n1 name2 n2'"),
        ("2\nann 1 x\nann 1 bob 1\n", "pairs.txt:2: image number must be a positive integer, got 'x'"),
        ("ten\nann 1 2\n", "pairs.txt:1: expected a header with the number of folds and pairs per fold"),
        ("2 1\nann 1 2\nann 1 bob 1\n", "pairs.txt:1: the header announces 2 fold(s) of 1 same and 1 different"),
        ("3\nann 1 2\nann 1 bob 1\n", "pairs.txt:1: the header announces 3 pairs"),
        ("1\nann 1 4\n", "ann_0004.jpg: no such image (named on line 2 of"),
        ("1\n../x 1 2\n", "pairs.txt:2: '../x' is not a usable person name"),
        ("", "pairs.txt: no pairs in the file"),
    ],
)
def test_bad_pairs_files_are_one_line_usage_errors(lfw: Path, tmp_path: Path, content: str, message: str) -> None:
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(content)
    code, out, err = run("eval", "pairs", "--root", str(lfw), "--pairs", str(pairs), "--db", str(tmp_path / "e.db"))
    assert code == 2, err
    assert err.startswith("Error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out


def test_missing_inputs_are_usage_errors(lfw: Path, tmp_path: Path) -> None:
    code, _, err = run("eval", "pairs", "--root", str(lfw), "--pairs", str(tmp_path / "nope.txt"))
    assert code == 2 and err.strip() == f"Error: {tmp_path / 'nope.txt'}: no such file or folder"
    code, _, err = run("eval", "clusters", "--root", str(tmp_path / "nowhere"))
    assert code == 2 and "no such file or folder" in err
    bad = tmp_path / "labels.csv"
    bad.write_text("relative_path,identity\nann/ann_0001.jpg,ann,extra\n")
    code, _, err = run("eval", "clusters", "--root", str(lfw), "--labels", str(bad))
    assert code == 2 and f"{bad}:2: expected 'relative_path,identity'" in err
    code, _, err = run("calibrate", "--root", str(lfw), "--start", "0.7", "--stop", "0.5")
    assert code == 2 and "--stop (0.5) must not be below --start (0.7)" in err


def test_plot_destination_that_cannot_be_written_is_exit_1(
    lfw: Path, tmp_path: Path, embedder: SmallPhotosHaveNoFace
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run("calibrate", "--root", str(lfw), "--workers", "1", "--plot", str(blocker / "p.png"))
    assert code == 1 and err.startswith(f"Error: {blocker / 'p.png'}: cannot write the plot")
    assert embedder.calls == 0  # refused before scanning


def test_eval_clusters_gives_figures_per_age_group(tmp_path: Path, embedder: SmallPhotosHaveNoFace) -> None:
    """A labels CSV with an age_group column (the age-gap set's layout) is read, and the
    figures come per group: within young, within adult, and across (a child with an
    unrelated adult is a person mixing people across the groups)."""
    root = tmp_path / "ages"
    yellow = (200, 200, 20)
    rows = [  # (path, identity, group, colour): one colour is one person for the fake embedder
        ("kid_a/1.jpg", "kid_a", "young", RED),
        ("kid_a/2.jpg", "kid_a", "young", RED),
        ("kid_b/1.jpg", "kid_b", "young", RED),  # two children in one person
        ("adult_a/1.jpg", "adult_a", "adult", GREEN),
        ("adult_a/2.jpg", "adult_a", "adult", GREEN),
        ("adult_c/1.jpg", "adult_c", "adult", BLUE),
        ("kid_d/1.jpg", "kid_d", "young", BLUE),  # a child with an unrelated adult
        ("eve/young.jpg", "eve", "young", yellow),
        ("eve/adult.jpg", "eve", "adult", yellow),  # one person across ages: right
    ]
    for path, _, _, colour in rows:
        write_photo(root / path, colour)
    labels = tmp_path / "labels.csv"
    labels.write_text("relative_path,identity,age_group\n" + "".join(f"{p},{i},{g}\n" for p, i, g, _ in rows))
    code, out, err = run("eval", "clusters", "--root", str(root), "--labels", str(labels), "--workers", "1", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["persons"], doc["persons_mixing"]) == (4, 2)
    groups = {g["group"]: g for g in doc["groups"]}
    assert set(groups) == {"adult", "young", "adult-young"} and {g["column"] for g in doc["groups"]} == {"age_group"}
    young, adult, cross = groups["young"], groups["adult"], groups["adult-young"]
    assert (young["images"], young["persons"], young["persons_mixing"]) == (5, 3, 2)
    assert young["pairwise"]["precision"] == pytest.approx(1 / 3) and young["pairwise"]["recall"] == 1.0
    assert (adult["images"], adult["persons"], adult["persons_mixing"]) == (4, 3, 1)
    assert adult["pairwise"]["f1"] == 1.0 and adult["bcubed"]["f1"] == 1.0
    assert (cross["images"], cross["persons"], cross["persons_mixing"]) == (9, 2, 1)
    assert cross["pairwise"]["precision"] == 0.5 and cross["pairwise"]["recall"] == 1.0
    assert cross["bcubed"]["precision"] == 0.5 and cross["bcubed"]["recall"] == 1.0
    code, out, err = run("eval", "clusters", "--root", str(root), "--labels", str(labels), "--workers", "1")
    assert code == 0, err
    assert "Per age_group" in out and "adult-young" in out
    assert "Persons (2+ images) / mixing people" in out
