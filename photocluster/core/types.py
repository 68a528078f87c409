"""Frozen data carriers passed between the pipeline stages.

They hold numpy arrays and plain numbers only (no dlib objects) and validate
themselves when built, stating the expected and the actual shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EMBEDDING_DIM = 128
N_LANDMARKS = 5


def person_label(person_id: int, name: str | None = None) -> str:
    """How a person is called everywhere (folders, pages, listings, sidecars): its name, or
    ``person_0042`` when it has none."""
    return name or f"person_{person_id:04d}"


def _check_array(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


@dataclass(frozen=True, slots=True)  # slots: a million of them in an export
class Box:
    """A face box in pixels of the photo as displayed (EXIF orientation applied), full size."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        if not (self.right > self.left and self.bottom > self.top):
            raise ValueError(
                f"box must have right > left and bottom > top, got "
                f"({self.left}, {self.top}, {self.right}, {self.bottom})"
            )

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def scaled(self, factor: float) -> Box:
        return Box(self.left * factor, self.top * factor, self.right * factor, self.bottom * factor)

    def iou(self, other: Box) -> float:
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / (self.width * self.height + other.width * other.height - inter)

    def as_list(self, ndigits: int = 1) -> list[float]:
        return [round(v, ndigits) for v in (self.left, self.top, self.right, self.bottom)]


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face: where it is, how sure the detector was, and its descriptor.

    ``landmarks`` are the 5 points of dlib's shape predictor, (x, y) in displayed
    photo pixels. ``embedding`` is dlib's 128-d ResNet descriptor: faces of one
    person are usually closer than 0.6 in Euclidean distance.
    """

    box: Box
    confidence: float
    landmarks: np.ndarray
    embedding: np.ndarray
    id: int | None = None
    photo_id: int | None = None
    person_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "landmarks", _check_array("landmarks", self.landmarks, (N_LANDMARKS, 2)))
        object.__setattr__(self, "embedding", _check_array("embedding", self.embedding, (EMBEDDING_DIM,)))


@dataclass(frozen=True, slots=True)
class Photo:
    """A file as the database knows it."""

    id: int
    path: Path
    size: int
    mtime_ns: int
    sha256: str | None
    width: int | None
    height: int | None
    taken_at: str | None
    status: str
    error: str | None = None
    # A key of the decoded pixels (see photocluster.detect.images.fingerprint), or None.
    pixel_key: str | None = None


@dataclass(frozen=True, slots=True)
class PersonFace:
    """A face as a member of a person, with the photo it is in."""

    face_id: int
    photo_id: int
    photo_path: Path
    box: Box
    confidence: float
    distance: float
    taken: str | None = None  # the day its photo was taken (YYYY-MM-DD), when the person has a birth date


@dataclass(frozen=True)
class Person:
    """A group of faces believed to be one person. ``id`` is None for the unknown group."""

    id: int | None
    name: str | None
    faces: tuple[PersonFace, ...] = field(default_factory=tuple)
    ignored: bool = False
    born: str | None = None  # birth date (YYYY-MM-DD), see `photocluster born`

    @property
    def label(self) -> str:
        if self.id is None:
            return "unknown"
        return person_label(self.id, self.name)

    @property
    def photo_count(self) -> int:
        return len({f.photo_id for f in self.faces})
