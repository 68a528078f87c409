"""Box geometry and the shape checks of Face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photocluster.core.types import EMBEDDING_DIM, Box, Face, Person, PersonFace


def _face(landmarks: object, embedding: object) -> Face:
    return Face(box=Box(0, 0, 10, 10), confidence=0.9, landmarks=landmarks, embedding=embedding)  # type: ignore[arg-type]


def test_box_size_and_center() -> None:
    b = Box(10, 20, 50, 80)
    assert b.width == 40
    assert b.height == 60
    assert b.center == (30.0, 50.0)


def test_iou_identical_boxes_is_one() -> None:
    assert Box(0, 0, 10, 10).iou(Box(0, 0, 10, 10)) == 1.0


def test_iou_partial_overlap() -> None:
    # Intersection 5x10 = 50; union 100 + 100 - 50 = 150.
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_iou_contained_box() -> None:
    # Inner 4x4 = 16 inside 10x10 = 100: 16 / 100.
    assert Box(0, 0, 10, 10).iou(Box(3, 3, 7, 7)) == pytest.approx(0.16)


def test_iou_is_symmetric() -> None:
    a, b = Box(0, 0, 10, 20), Box(4, 5, 30, 9)
    assert a.iou(b) == b.iou(a)


def test_iou_disjoint_and_touching_boxes_are_zero() -> None:
    assert Box(0, 0, 10, 10).iou(Box(20, 20, 30, 30)) == 0.0
    # Sharing an edge only: no area in common.
    assert Box(0, 0, 10, 10).iou(Box(10, 0, 20, 10)) == 0.0
    assert Box(0, 0, 10, 10).iou(Box(0, 10, 10, 20)) == 0.0


def test_scaled_multiplies_every_coordinate() -> None:
    assert Box(10, 20, 30, 40).scaled(0.5) == Box(5, 10, 15, 20)
    assert Box(1, 2, 3, 4).scaled(2.0) == Box(2, 4, 6, 8)


def test_scaled_then_unscaled_round_trips() -> None:
    b = Box(12.5, 7.25, 100.0, 64.0)
    back = b.scaled(0.3).scaled(1 / 0.3)
    assert back.as_list(6) == b.as_list(6)


def test_as_list_rounds() -> None:
    assert Box(1.04, 2.06, 3.26, 4.0).as_list() == [1.0, 2.1, 3.3, 4.0]
    assert Box(1.234, 2.346, 3.451, 4.567).as_list(2) == [1.23, 2.35, 3.45, 4.57]


@pytest.mark.parametrize(
    "coords",
    [(10, 0, 10, 5), (10, 0, 5, 5), (0, 5, 5, 5), (0, 5, 5, 1)],
)
def test_degenerate_box_is_refused_with_the_coordinates(coords: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError) as info:
        Box(*coords)
    message = str(info.value)
    assert "right > left and bottom > top" in message
    assert f"got ({coords[0]}, {coords[1]}, {coords[2]}, {coords[3]})" in message


def test_face_converts_arrays_to_float32() -> None:
    face = _face(np.zeros((5, 2), dtype=np.float64), [0.5] * EMBEDDING_DIM)
    assert face.landmarks.dtype == np.float32
    assert face.embedding.dtype == np.float32
    assert face.landmarks.shape == (5, 2)
    assert face.embedding.shape == (128,)
    assert float(face.embedding[0]) == 0.5


def test_face_defaults() -> None:
    face = _face(np.zeros((5, 2)), np.zeros(128))
    assert (face.id, face.photo_id, face.person_id) == (None, None, None)


@pytest.mark.parametrize("shape", [(68, 2), (5, 3), (10,), (2, 5)])
def test_wrong_landmark_shape_names_expected_and_actual(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as info:
        _face(np.zeros(shape), np.zeros(128))
    assert str(info.value) == f"landmarks must have shape (5, 2), got {shape}"


@pytest.mark.parametrize("shape", [(127,), (129,), (1, 128), (128, 1), ()])
def test_wrong_embedding_shape_names_expected_and_actual(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as info:
        _face(np.zeros((5, 2)), np.zeros(shape))
    assert str(info.value) == f"embedding must have shape (128,), got {shape}"


def test_non_finite_values_are_refused() -> None:
    emb = np.zeros(128)
    emb[3] = np.nan
    with pytest.raises(ValueError, match="embedding must be finite"):
        _face(np.zeros((5, 2)), emb)
    lm = np.zeros((5, 2))
    lm[0, 0] = np.inf
    with pytest.raises(ValueError, match="landmarks must be finite"):
        _face(lm, np.zeros(128))


def test_person_label_and_photo_count() -> None:
    box = Box(0, 0, 1, 1)
    faces = (
        PersonFace(1, 10, Path("/a.jpg"), box, 1.0, 0.1),
        PersonFace(2, 10, Path("/a.jpg"), box, 1.0, 0.2),
        PersonFace(3, 11, Path("/b.jpg"), box, 1.0, 0.3),
    )
    assert Person(7, None, faces).label == "person_0007"
    assert Person(7, "Ada", faces).label == "Ada"
    assert Person(None, None, faces).label == "unknown"
    assert Person(7, None, faces).photo_count == 2
