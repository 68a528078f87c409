"""Every fixed choice an option offers, defined once.

Each is a :class:`~enum.StrEnum`: the CLI's ``--help`` lists its values from here (typer reads
the enum), and a member is equal to its string, so the library keeps accepting plain strings
(``engine="onnx"``) where it takes a choice; :func:`choice` turns either into the member, with
the one-line usage error a bad value gets.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from photocluster.core.errors import UsageError


class Detector(StrEnum):
    """The face detector: dlib's CNN (accurate) or its HOG detector (fast, frontal faces only)."""

    CNN = "cnn"
    HOG = "hog"


class Engine(StrEnum):
    """What runs dlib's two networks (the landmarks and chips stay dlib's)."""

    AUTO = "auto"  # dlib on a CUDA GPU, else torch on one, else onnx when installed, else dlib
    ONNX = "onnx"  # dlib's weights on onnxruntime: same faces, many times faster on a CPU
    DLIB = "dlib"  # dlib itself
    TORCH = "torch"  # dlib's weights on PyTorch, for a CUDA GPU (the `gpu` extra)


class ExportMode(StrEnum):
    """How a photo appears in the folder of each person in it."""

    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    COPY = "copy"


class XmpTarget(StrEnum):
    """Where an export writes XMP sidecars: beside the photo entries in the export, or beside the originals."""

    DEST = "dest"
    ORIGINALS = "originals"


E = TypeVar("E", bound=StrEnum)


def choice(kind: type[E], value: str, option: str) -> E:
    """``value`` as a member of ``kind``, whether given as the member or its string; a bad one is a
    :class:`UsageError` naming ``option`` (``--engine``) and the values it takes."""
    try:
        return kind(value)
    except ValueError:
        values = ", ".join(m.value for m in kind)
        raise UsageError(f"{option} must be one of {values}, got {value!r}") from None
