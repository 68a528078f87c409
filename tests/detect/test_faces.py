"""The dlib stage on real models and real photos (seconds each on CPU: kept small)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from conftest import rgba_png
from photocluster.core.config import DetectionSettings
from photocluster.detect import faces as fc
from photocluster.detect.images import load_image
from photocluster.detect.models import model_files

pytestmark = pytest.mark.models

SMALL = DetectionSettings(max_size=640)


def test_dlib_build_is_reported() -> None:
    build = fc.dlib_build()
    assert build.version.count(".") >= 1
    text = build.describe()
    assert text.startswith(f"dlib {build.version} (")
    assert ("CUDA" in text) == build.cuda


def test_model_files_come_from_the_package() -> None:
    files = model_files().all()
    assert set(files) == {
        "mmod_human_face_detector",
        "shape_predictor_5_face_landmarks",
        "dlib_face_recognition_resnet_model_v1",
    }
    assert all(p.is_file() and p.stat().st_size > 10_000 for p in files.values())


def test_rgba_png_gives_one_face(fixtures: Path, tmp_path: Path) -> None:
    png = rgba_png(fixtures / "face_recognition-knn" / "train" / "obama" / "obama2.jpg", tmp_path / "32bit.png")
    analysis = fc.analyze_file(png, SMALL)
    assert (analysis.width, analysis.height) == (626, 1200)
    assert len(analysis.faces) == 1
    face = analysis.faces[0]
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert 0.5 < float(np.linalg.norm(face.embedding)) < 1.5
    assert face.confidence > 0.5
    # Full-resolution coordinates even though detection ran at 640 px.
    assert 100 < face.box.width < 500
    assert face.box.left >= 0 and face.box.right <= 626
    _landmarks_inside(face)


def _landmarks_inside(face: fc.Face) -> None:
    x, y = face.landmarks[:, 0], face.landmarks[:, 1]
    pad = 0.15 * face.box.width
    assert np.all((x > face.box.left - pad) & (x < face.box.right + pad))
    assert np.all((y > face.box.top - pad) & (y < face.box.bottom + pad))


@pytest.mark.parametrize(("orientation", "stored"), [(6, Image.Transpose.ROTATE_90), (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_copy_finds_the_same_face(
    fixtures: Path, tmp_path: Path, orientation: int, stored: Image.Transpose
) -> None:
    src = fixtures / "face_recognition-knn" / "train" / "obama" / "obama2.jpg"
    original = Image.open(src).convert("RGB")
    rotated = tmp_path / f"rotated-{orientation}.jpg"
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    original.transpose(stored).save(rotated, quality=95, exif=exif.tobytes())

    plain = fc.analyze_file(src, SMALL)
    turned = fc.analyze_file(rotated, SMALL)
    assert (turned.width, turned.height) == (plain.width, plain.height) == original.size
    assert len(plain.faces) == len(turned.faces) == 1
    a, b = plain.faces[0], turned.faces[0]
    assert a.box.iou(b.box) > 0.85
    assert float(np.linalg.norm(a.landmarks - b.landmarks, axis=1).max()) < 0.05 * a.box.width
    assert float(np.linalg.norm(a.embedding - b.embedding)) < 0.15
    _landmarks_inside(b)


def test_small_photo_is_enlarged_so_a_60px_face_is_found(fixtures: Path) -> None:
    path = (
        fixtures
        / "dlib-johns"
        / "John_Simm"
        / sorted(p.name for p in (fixtures / "dlib-johns" / "John_Simm").iterdir())[0]
    )
    image = load_image(path, 1600)
    assert image.pixels.shape[:2] == (300, 300) and image.scale == 2.0
    assert len(fc.analyze_pixels(image, DetectionSettings())) == 1
    # The classic dlib call (no upsampling) misses many of these: that is why "auto" exists.
    plain = fc.analyze_file(path, DetectionSettings(upsample=0))
    found = fc.analyze_file(path, DetectionSettings())
    assert len(found.faces) == 1
    assert len(plain.faces) <= 1


def test_hog_detector(fixtures: Path) -> None:
    analysis = fc.analyze_file(
        fixtures / "face_recognition-knn" / "train" / "obama" / "obama.jpg", DetectionSettings("hog", 640)
    )
    assert len(analysis.faces) == 1


def test_no_face_in_dogs(fixtures: Path) -> None:
    assert fc.analyze_file(fixtures / "dlib-faces" / "dogs.jpg", DetectionSettings(max_size=480)).faces == []


def test_embedding_of_same_person_is_closer_than_of_another(fixtures: Path) -> None:
    train = fixtures / "face_recognition-knn" / "train"
    emb = {
        name: fc.analyze_file(train / name, SMALL).faces[0].embedding
        for name in ("obama/obama.jpg", "obama/obama2.jpg", "biden/biden2.jpg")
    }
    same = np.linalg.norm(emb["obama/obama.jpg"] - emb["obama/obama2.jpg"])
    other = np.linalg.norm(emb["obama/obama.jpg"] - emb["biden/biden2.jpg"])
    assert same < 0.6 < other


@pytest.mark.parametrize(("upsample", "size"), [(None, 700), (1, 400)])
def test_onnx_engine_gives_dlibs_faces(fixtures: Path, upsample: int | None, size: int) -> None:
    path = fixtures / "face_recognition-knn" / "test" / "kit_with_rose.jpg"
    dlib_run = fc.analyze_file(path, DetectionSettings(max_size=size, upsample=upsample, engine="dlib"))
    onnx_run = fc.analyze_file(path, DetectionSettings(max_size=size, upsample=upsample, engine="onnx"))
    assert len(dlib_run.faces) == len(onnx_run.faces) == 2
    for a, b in zip(dlib_run.faces, onnx_run.faces, strict=True):
        assert a.box.iou(b.box) > 0.99
        assert abs(a.confidence - b.confidence) < 1e-3
        cosine = float(a.embedding @ b.embedding / (np.linalg.norm(a.embedding) * np.linalg.norm(b.embedding)))
        assert cosine > 0.9999


@pytest.mark.parametrize("engine", ["dlib", "onnx"])
def test_tiny_images_are_skipped_not_crashed_on(engine: str) -> None:
    pixels = np.full((8, 8, 3), 128, dtype=np.uint8)
    assert fc.detect(pixels, "cnn", 0, engine) == []
    # The process is still healthy: a real detection afterwards works.
    big = np.full((64, 64, 3), 128, dtype=np.uint8)
    assert fc.detect(big, "cnn", 0, engine) == []


def test_a_descriptor_is_the_mean_of_six_views_of_the_chip(fixtures: Path) -> None:
    image = load_image(fixtures / "face_recognition-knn" / "train" / "obama" / "obama.jpg", 640)
    box = fc.detect(image.pixels, "cnn", 0, "onnx")[0].box
    points = fc.landmarks(image.pixels, box)
    plain = fc.chips(image.pixels, [box], [points])[0]
    m = fc.VIEW_SHIFT
    big = fc.chips(image.pixels, [box], [points], margin=m)[0]
    assert big.shape == (fc.CHIP_SIZE + 2 * m, fc.CHIP_SIZE + 2 * m, 3)
    # The margin keeps the ResNet's scale: the big chip's centre is the plain chip.
    centre = big[m : m + fc.CHIP_SIZE, m : m + fc.CHIP_SIZE].astype(np.float32)
    assert np.abs(centre - plain).mean() < 3.0
    views = []
    for dy in (0, -m, m):
        view = np.ascontiguousarray(big[m + dy : m + dy + fc.CHIP_SIZE, m : m + fc.CHIP_SIZE])
        views += [view, np.ascontiguousarray(view[:, ::-1])]
    by_hand = fc.embed(views, engine="onnx").mean(axis=0)
    described = fc.describe(image.pixels, [box], [points], "onnx")
    assert described.shape == (1, 128) and described.dtype == np.float32
    assert np.allclose(described[0], by_hand, atol=1e-6)
    # Close to the one-chip descriptor (the same face), not equal to it.
    one = fc.embed([plain], engine="onnx")[0]
    assert 0.01 < float(np.linalg.norm(described[0] - one)) < 0.2
    assert fc.describe(image.pixels, [], [], "onnx").shape == (0, 128)
