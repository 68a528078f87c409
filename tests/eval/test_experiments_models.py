"""eval pairs / eval clusters / calibrate on the real dlib models and the labelled fixtures.

Each image set is scanned once per module (module-scoped stores); later tests on the same
store reuse the scans (by path, or by content for the LFW-style links).
"""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photocluster.core.config import DetectionSettings
from photocluster.eval.calibrate import calibrate
from photocluster.eval.clusters import ClustersResult, eval_clusters
from photocluster.eval.metrics import PRF
from photocluster.eval.pairs import eval_pairs
from photocluster.eval.plot import plot_calibration
from photocluster.store import Store

pytestmark = pytest.mark.models

PERFECT = PRF(1.0, 1.0, 1.0)


def lfw_layout(dest: Path, images: dict[str, list[Path]]) -> None:
    """``dest/<name>/<name>_000N.jpg`` links to each person's images, in the order given."""
    for name, paths in images.items():
        (dest / name).mkdir(parents=True, exist_ok=True)
        for k, path in enumerate(paths, start=1):
            (dest / name / f"{name}_{k:04d}.jpg").symlink_to(path.resolve())


def write_pairs(path: Path, header: str, pairs: list[tuple[object, ...]]) -> Path:
    path.write_text(header + "\n" + "".join("\t".join(map(str, p)) + "\n" for p in pairs))
    return path


# -- dlib-johns: 5 similar-looking people, 11 crops of 150 px each --------------------


@pytest.fixture(scope="module")
def johns(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ClustersResult]]:
    with Store(tmp_path_factory.mktemp("eval-johns") / "johns.db") as store:
        yield store, eval_clusters(store, fixtures / "dlib-johns", workers=2)


def test_johns_cluster_into_five_pure_persons(johns: tuple[Store, ClustersResult]) -> None:
    _, result = johns
    assert result.scan["analysed"] == 55
    assert (result.images, result.identities, result.clusters, result.singletons) == (55, 5, 5, 0)
    assert result.pairwise == PERFECT
    assert result.bcubed == PERFECT
    assert result.nmi == pytest.approx(1.0, abs=1e-12)
    assert (result.worst, result.no_face, result.unreadable) == ((), (), ())


def test_johns_calibration_recommends_the_middle_of_the_perfect_range(
    johns: tuple[Store, ClustersResult], fixtures: Path, tmp_path: Path
) -> None:
    store, _ = johns
    result = calibrate(store, fixtures / "dlib-johns", workers=2, method="whispers")
    assert result.scan["analysed"] == 0  # the scan of the fixture above is reused
    rows = {r.threshold: r for r in result.rows}
    assert rows[0.3].pairwise.precision == 1.0 and rows[0.3].pairwise.recall < 0.9  # splits people
    assert rows[0.8].pairwise.recall == 1.0 and rows[0.8].pairwise.precision < 0.5  # merges people
    assert rows[0.6].pairwise == PERFECT and rows[0.6].clusters == 5
    perfect = [t for t, r in rows.items() if r.bcubed.f1 == 1.0]
    assert min(perfect) < 0.55 and max(perfect) > 0.62
    assert result.recommended == pytest.approx((min(perfect) + max(perfect)) / 2, abs=0.011)
    assert result.best.bcubed == PERFECT

    png = plot_calibration(result, tmp_path / "calibration.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (900, 560)
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3).astype(int)
    not_white = np.any(pixels < 250, axis=1)
    assert 0.01 < not_white.mean() < 0.5
    blue = np.all(np.abs(pixels - (31, 119, 180)) < 30, axis=1).sum()
    orange = np.all(np.abs(pixels - (255, 127, 14)) < 30, axis=1).sum()
    red = np.all(np.abs(pixels - (214, 39, 40)) < 30, axis=1).sum()
    assert blue > 200 and orange > 200 and red > 50


def test_johns_sweep_of_the_default_method_is_the_default_at_0_6(
    johns: tuple[Store, ClustersResult], fixtures: Path
) -> None:
    store, default = johns
    result = calibrate(store, fixtures / "dlib-johns", thresholds=[0.3, 0.5, 0.6, 0.7], workers=2)
    rows = {r.threshold: r for r in result.rows}
    assert result.method == "two-stage"
    assert rows[0.6] == replace(result.default, threshold=0.6)
    assert rows[0.6].pairwise == default.pairwise == PERFECT
    assert rows[0.3].pairwise.precision == 1.0 and rows[0.3].clusters > 5  # stricter: splits people
    at = eval_clusters(store, fixtures / "dlib-johns", threshold=0.6, workers=2)
    assert at.pairwise == default.pairwise and at.clusters == default.clusters
    assert at.operating_point["threshold"] == 0.6 and at.operating_point["link"] == default.operating_point["link"]


def test_johns_lfw_pairs_with_folds_from_the_file(
    johns: tuple[Store, ClustersResult], fixtures: Path, tmp_path: Path
) -> None:
    store, _ = johns
    root = fixtures / "dlib-johns"
    people = sorted(p.name for p in root.iterdir())
    lfw_layout(tmp_path / "lfw", {name: sorted((root / name).iterdir()) for name in people})
    same = [(n, a, b) for n in people for a, b in itertools.combinations(range(1, 12), 2)]
    diff = [(n1, a, n2, b) for n1, n2 in itertools.combinations(people, 2) for a in range(1, 12) for b in range(1, 12)]
    rng = np.random.default_rng(0)
    same = [same[k] for k in rng.permutation(len(same))[:100]]
    diff = [diff[k] for k in rng.permutation(len(diff))[:100]]
    # LFW's View 2 layout: "folds pairs_per_fold", then per fold the same pairs, then the different.
    blocks = [p for f in range(10) for p in same[10 * f : 10 * f + 10] + diff[10 * f : 10 * f + 10]]
    pairs = write_pairs(tmp_path / "pairs.txt", "10\t10", blocks)

    result = eval_pairs(store, tmp_path / "lfw", pairs, workers=2)
    assert result.scan["analysed"] == 0  # links to photos already embedded: reused by content
    assert (result.pairs, result.same_pairs, result.different_pairs, result.images) == (200, 100, 100, 55)
    assert (result.folds, result.folds_from_file, result.no_face) == (10, True, ())
    s = result.strict
    assert (s.accuracy, s.wrong, s.cv_accuracy, s.cv_std, s.roc_auc, s.tar) == (1.0, 0, 1.0, 0.0, 1.0, 1.0)
    assert len(s.cv_thresholds) == 10 and all(0.5 < t < 0.7 for t in s.cv_thresholds)
    assert result.fallback == s


def test_small_portraits_are_found_by_default_and_the_fallback_recovers_them_without_upsampling(
    johns: tuple[Store, ClustersResult], fixtures: Path, tmp_path: Path
) -> None:
    """Two Johns, 6 photos each; photos 3 and 6 of each shrunk to 64 px (faces ~50 px)."""
    store, _ = johns
    images: dict[str, list[Path]] = {}
    for name in ("John_Salley", "John_Simm"):
        images[name] = []
        for k, src in enumerate(sorted((fixtures / "dlib-johns" / name).iterdir())[:6], start=1):
            if k % 3:
                images[name].append(src)
            else:
                small = tmp_path / "small" / f"{name}_{k}.jpg"
                small.parent.mkdir(exist_ok=True)
                Image.open(src).resize((64, 64), Image.Resampling.LANCZOS).save(small, quality=95)
                images[name].append(small)
    lfw_layout(tmp_path / "lfw", images)
    same = [(n, a, b) for n in images for a, b in itertools.combinations(range(1, 7), 2)]
    diff = [("John_Salley", a, "John_Simm", b) for a in range(1, 7) for b in range(1, 7)]
    pairs = write_pairs(tmp_path / "pairs.txt", "66", same + diff)

    # Defaults: the CNN's pyramid upsampling finds faces from ~40 px, so every face is found.
    default = eval_pairs(store, tmp_path / "lfw", pairs, workers=2)
    assert default.scan["analysed"] == 4
    assert default.no_face == ()
    assert (default.strict.accuracy, default.strict.roc_auc) == (1.0, 1.0)

    # Without upsampling (or enlargement) the CNN finds none of the 50 px faces. Of the 66 pairs, 28 have
    # no shrunk photo (12 same, 16 different); the other 38 count as wrong when strict.
    no_enlarge = eval_pairs(store, tmp_path / "lfw", pairs, settings=DetectionSettings(upsample=0), workers=2)
    assert no_enlarge.no_face == (
        "John_Salley/John_Salley_0003.jpg",
        "John_Salley/John_Salley_0006.jpg",
        "John_Simm/John_Simm_0003.jpg",
        "John_Simm/John_Simm_0006.jpg",
    )
    strict, fallback = no_enlarge.strict, no_enlarge.fallback
    assert (strict.missing_pairs, strict.wrong, strict.accuracy) == (38, 38, 28 / 66)
    assert strict.roc_auc < 0.5 and strict.tar < 0.5
    # The centred fallback box aligns and embeds those faces well enough for every pair.
    assert (fallback.missing_pairs, fallback.wrong, fallback.accuracy, fallback.roc_auc) == (0, 0, 1.0, 1.0)


# -- face_recognition-knn/train: 5 people, 9 photos ----------------------------------


@pytest.fixture(scope="module")
def knn(fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ClustersResult]]:
    with Store(tmp_path_factory.mktemp("eval-knn") / "knn.db") as store:
        result = eval_clusters(
            store, fixtures / "face_recognition-knn" / "train", settings=DetectionSettings(max_size=640), workers=2
        )
        yield store, result


def test_knn_train_clusters_by_folder(knn: tuple[Store, ClustersResult]) -> None:
    _, result = knn
    assert result.scan["analysed"] == 9
    assert (result.images, result.identities, result.clusters, result.no_face) == (9, 5, 5, ())
    assert result.pairwise == PERFECT and result.bcubed == PERFECT
    assert result.nmi == pytest.approx(1.0, abs=1e-12)


def test_knn_train_from_a_labels_csv(knn: tuple[Store, ClustersResult], fixtures: Path, tmp_path: Path) -> None:
    store, _ = knn
    prefix = "face_recognition-knn/train/"
    with open(fixtures / "labels.csv", newline="") as fh:
        rows = [(r["relative_path"][len(prefix) :], r["identity"]) for r in csv.DictReader(fh)]
    rows = [r for r in rows if not r[0].startswith(("face_", "dlib", "deepface"))]
    rows = [(p, "<unlabeled>" if p == "biden/biden.jpg" else i) for p, i in rows if "/" in p]
    labels = tmp_path / "labels.csv"
    labels.write_text("relative_path,identity\n" + "".join(f"{p},{i}\n" for p, i in rows))
    result = eval_clusters(
        store,
        fixtures / "face_recognition-knn" / "train",
        labels,
        settings=DetectionSettings(max_size=640),
        workers=2,
    )
    assert result.scan["analysed"] == 0
    assert (result.images, result.identities, result.skipped_labels, result.clusters) == (8, 5, 1, 5)
    assert result.pairwise == PERFECT


def test_knn_train_at_a_loose_threshold_lists_the_mixed_clusters(
    knn: tuple[Store, ClustersResult], fixtures: Path
) -> None:
    store, _ = knn
    result = eval_clusters(
        store,
        fixtures / "face_recognition-knn" / "train",
        threshold=1.0,
        method="whispers",
        settings=DetectionSettings(max_size=640),
        workers=2,
    )
    assert result.clusters < 5 and result.pairwise.precision < 1.0 and result.pairwise.recall == 1.0
    assert result.worst, "a loose threshold must merge people"
    sizes = [m.size for m in result.worst]
    assert sizes == sorted(sizes, reverse=True)
    top = result.worst[0]
    assert len(top.identities) >= 2 and sum(n for _, n in top.identities) == top.size == len(top.files)
    assert {identity for _, identity in top.files} == {name for name, _ in top.identities}
    assert all(path.split("/")[0] == identity for path, identity in top.files)


# -- deepface: the repo's own same/different pairs ------------------------------------


@pytest.mark.shared_fixtures
def test_deepface_master_pairs_in_lfw_format(shared_fixtures: Path, tmp_path: Path) -> None:
    fixtures = shared_fixtures  # the whole deepface subset and its pair files
    folder = fixtures / "deepface-dataset"
    with open(fixtures / "labels.csv", newline="") as fh:
        identity = {r["relative_path"]: r["identity"] for r in csv.DictReader(fh)}
    with open(folder / "master.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (folder / r["file_x"]).is_file() and (folder / r["file_y"]).is_file()]
    files = sorted({r["file_x"] for r in rows} | {r["file_y"] for r in rows}, key=lambda f: int(f[3:-4]))
    by_name: dict[str, list[Path]] = defaultdict(list)
    number: dict[str, tuple[str, int]] = {}
    for f in files:
        name = identity[f"deepface-dataset/{f}"]
        by_name[name].append(folder / f)
        number[f] = (name, len(by_name[name]))
    lfw_layout(tmp_path / "lfw", by_name)
    pairs: list[tuple[object, ...]] = []
    for r in rows:
        (a, na), (b, nb) = number[r["file_x"]], number[r["file_y"]]
        assert (a == b) == (r["Decision"] == "Yes")
        pairs.append((a, na, nb) if a == b else (a, na, b, nb))
    pairs_file = write_pairs(tmp_path / "pairs.txt", str(len(pairs)), pairs)

    with Store(tmp_path / "deepface.db") as store:
        result = eval_pairs(store, tmp_path / "lfw", pairs_file, settings=DetectionSettings(max_size=480), workers=2)
    assert (result.pairs, result.same_pairs, result.different_pairs, result.images) == (136, 11, 125, 17)
    assert (result.folds, result.folds_from_file, result.no_face, result.unreadable) == (10, False, (), ())
    s = result.strict
    assert (s.accuracy, s.wrong, s.cv_accuracy, s.roc_auc, s.tar, s.missing_pairs) == (1.0, 0, 1.0, 1.0, 1.0, 0)
    assert 0.5 < s.best_threshold < 0.65
    assert result.fallback == s
