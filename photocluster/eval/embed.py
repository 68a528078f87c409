"""One embedding per labelled image, through the pipeline users run.

Every image goes through :func:`photocluster.app.scan.scan` with the same settings as
``photocluster scan`` (so a database given with ``--db`` is reused: a second run only reads
it). One face stands for each image: the face nearest the image centre (labelled face sets
are crops around one person; other faces in them are bystanders).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photocluster.app.scan import scan
from photocluster.app.scan_report import ScanReport
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import PathNotFoundError
from photocluster.core.progress import ProgressCallback
from photocluster.core.types import EMBEDDING_DIM, Box, Face
from photocluster.detect.images import load_image
from photocluster.eval.datasets import LabelledImages
from photocluster.store import Store

# The fallback box for an image where no face was found: a centred square whose side is
# this share of the image's short side. The shape predictor places its 5 points relative
# to the box, so the box must frame the face about as dlib's detector would. Measured on
# the fixtures (distance between the embedding from the fallback box and from the detected
# face, mean / worst): on 250 px LFW-like crops where the face box is 0.45 of the side,
# 0.6 gives 0.03 / 0.07 (0.8 gives 0.09 / 0.30); on crops with looser framing (face 0.35),
# 0.6 gives 0.08 / 0.34 (0.8: unusable); on the 150 px dlib-johns crops (face 0.81),
# 0.6 gives 0.06 / 0.17 (0.8: 0.03 / 0.07). 0.6 is the best compromise, and best where
# labelled sets usually are (faces of 60-110 px in 150-250 px portraits).
FALLBACK_BOX = 0.6


@contextmanager
def eval_store(db: str | os.PathLike[str] | None) -> Iterator[Store]:
    """The database ``db``, or a temporary one (deleted on exit) when ``db`` is None."""
    if db is not None:
        with Store(Path(db).expanduser()) as store:
            yield store
        return
    with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as tmp, Store(Path(tmp) / "eval.db") as store:
        yield store


def nearest_centre(faces: Sequence[Face], width: float, height: float) -> Face | None:
    """The face whose box centre is nearest the image centre (the first of equals)."""
    if not faces:
        return None
    cx, cy = width / 2.0, height / 2.0
    dist = [(f.box.center[0] - cx) ** 2 + (f.box.center[1] - cy) ** 2 for f in faces]
    return faces[int(np.argmin(dist))]


def fallback_box(width: float, height: float) -> Box:
    """A centred square of side ``FALLBACK_BOX`` times the short side (see its comment)."""
    side = FALLBACK_BOX * min(width, height)
    return Box((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)


def fallback_face(path: Path, settings: DetectionSettings) -> Face:
    """Align and embed the centred :func:`fallback_box` of a photo, decoded as for detection."""
    from photocluster.detect import faces as fc

    image = load_image(path, settings.max_size, enlarge=settings.upsample is None)
    return fc.embed_box(image, fallback_box(image.width, image.height), settings.engine)


@dataclass(frozen=True)
class Embedded:
    """One embedding per image: ``found[k]`` is False where no face was found (that row is
    zeros), ``unreadable`` maps an image index to why the scan could not use it."""

    vectors: np.ndarray
    found: np.ndarray
    unreadable: dict[int, str]
    report: ScanReport
    face_ids: np.ndarray  # the stored id of each image's face, -1 where none was found


def embed_images(
    store: Store,
    paths: Sequence[Path],
    settings: DetectionSettings,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> Embedded:
    """Scan ``paths`` into ``store`` (skipping what it holds already) and take from each
    image the face nearest its centre."""
    # The scan visits one name per file: two names of one file (links) share its result.
    first_name: dict[tuple[int, int], Path] = {}
    scanned_as: list[Path] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            raise PathNotFoundError(path) from None
        scanned_as.append(first_name.setdefault((st.st_dev, st.st_ino), path))
    # The labels are the truth here: face tags in the images must not pin faces to persons.
    report = scan(store, list(first_name.values()), settings, workers=workers, progress=progress, tags=False)
    vectors = np.zeros((len(paths), EMBEDDING_DIM), dtype=np.float32)
    found = np.zeros(len(paths), dtype=bool)
    face_ids = np.full(len(paths), -1, dtype=np.int64)
    unreadable: dict[int, str] = {}
    for k, name in enumerate(scanned_as):
        known = store.photo_by_path(name)
        if known is None or known[0].status != "done" or known[0].width is None or known[0].height is None:
            unreadable[k] = (known[0].error if known else None) or "not scanned"
            continue
        photo = known[0]
        face = nearest_centre(store.photo_faces(photo.id), photo.width or 0, photo.height or 0)
        if face is not None:
            vectors[k] = face.embedding
            found[k] = True
            face_ids[k] = face.id if face.id is not None else -1
    return Embedded(vectors, found, unreadable, report, face_ids)


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.fsdecode(path)


def scan_summary(report: ScanReport) -> dict[str, object]:
    return {
        "analysed": report.analysed,
        "reused": report.unchanged + report.moved + report.duplicates,
        "seconds": round(report.seconds, 2),
        "settings": report.settings,
        "dlib": report.dlib,
    }


@dataclass(frozen=True)
class LabelledFaces:
    """Labelled images with their faces: ``identity_ids`` numbers the identities."""

    labelled: LabelledImages
    embedded: Embedded
    identity_ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.labelled.paths)

    def no_face(self) -> tuple[str, ...]:
        """The images (relative to the root) where no face was found."""
        e, root = self.embedded, self.labelled.root
        return tuple(
            sorted(
                relative(self.labelled.paths[k], root)
                for k in range(self.n)
                if not e.found[k] and k not in e.unreadable
            )
        )

    def unreadable(self) -> tuple[tuple[str, str], ...]:
        """The images (relative to the root) the scan could not use, with why."""
        return tuple(
            sorted(
                (relative(self.labelled.paths[k], self.labelled.root), r) for k, r in self.embedded.unreadable.items()
            )
        )


def labelled_faces(
    store: Store,
    labelled: LabelledImages,
    settings: DetectionSettings | None,
    workers: int,
    progress: ProgressCallback | None,
) -> LabelledFaces:
    """Embed ``labelled`` (see :func:`embed_images`) and number its identities."""
    embedded = embed_images(store, labelled.paths, settings or DetectionSettings(), workers, progress)
    _, identity_ids = np.unique(np.asarray(labelled.identities), return_inverse=True)
    return LabelledFaces(labelled, embedded, identity_ids.reshape(-1).astype(np.int64))
