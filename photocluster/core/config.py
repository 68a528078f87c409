"""Settings and where state lives.

The database is found, in order: the ``--db`` option; ``$PHOTOCLUSTER_HOME/photocluster.db``;
``$XDG_DATA_HOME/photocluster/photocluster.db``; ``~/.local/share/photocluster/photocluster.db``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from photocluster.core.choices import Detector, Engine, choice
from photocluster.core.errors import UsageError

HOME_ENV = "PHOTOCLUSTER_HOME"
DB_NAME = "photocluster.db"

# The choices' values as strings (core.choices defines them).
DETECTORS = tuple(d.value for d in Detector)
ENGINES = tuple(e.value for e in Engine)
# Chosen by benchmarks/detection_size.py: see README, "Detection size".
DEFAULT_MAX_SIZE = 1600
# Small photos are enlarged by at most this factor before detection: enough to
# bring a 40 px face up to the ~80 px the MMOD detector needs, at 4x the pixels.
MAX_ENLARGE = 2.0
# Chosen with benchmarks/detection_size.py (README, "Detection size"): one pyramid
# upsampling finds 40 px faces; the onnx engine makes its 4x pixels affordable.
DEFAULT_UPSAMPLE = 1
# Two faces closer than this are likely one person (dlib's verification threshold): the
# radius of the neighbour graph, and `clusters --threshold`'s meaning.
DEFAULT_THRESHOLD = 0.6
DEFAULT_MIN_SIZE = 2
# The default clustering (no --threshold), tuned on the development half of LFW (README,
# "How accurate is it"): faces closer than LINK_THRESHOLD are linked by Chinese whispers,
# then clusters whose faces are closer than MERGE_THRESHOLD on average (root mean squared
# distance) are merged; a face that Chinese whispers chained into a cluster whose other faces
# are farther than MERGE_THRESHOLD from it on average leaves it first. Small clusters need
# more: two clusters of n and m faces merge below
# MERGE_THRESHOLD - MERGE_SMALL_PENALTY / sqrt(n + m - 1) (two single faces: 0.46), since an
# average over few faces is a noisy one.
LINK_THRESHOLD = 0.38
MERGE_THRESHOLD = 0.52
MERGE_SMALL_PENALTY = 0.06
# ... and clusters closer than CLEAR_MERGE_THRESHOLD merge when the choice is clear: the
# smaller cluster's next nearest candidate is at least CLEAR_MERGE_MARGIN farther (few
# look-alikes around: a family's library, not a crowd of strangers).
CLEAR_MERGE_THRESHOLD: float | None = 0.58
CLEAR_MERGE_MARGIN = 0.06
# Faces the detector is unsure of (junk: a chin, a patterned cloth; blurred bystanders) never
# link or merge; they join a person only when one is clearly nearest, ATTACH_MARGIN closer
# than any other. Measured by benchmarks/face_quality.py: below 0.35 lie all 4 false
# detections found in the fixtures and the LFW sample, and 1.0% of true faces (bystanders).
MIN_CONFIDENCE = 0.35
ATTACH_MARGIN = 0.04
# Where the descriptor space is crowded (children's faces: dlib packs them together), every
# threshold of the default clustering is multiplied by a factor s in [CROWD_FLOOR, 1] per
# face (grouping/crowding.py): s = clip((sigma / CROWD_SCALE) ** CROWD_POWER, CROWD_FLOOR, 1),
# sigma the distance to the CROWD_K-th nearest other first-stage cluster. Chosen on the
# development halves of the age-gap set and LFW (docs/accuracy.md, "Children and ages").
CROWD_K = 20
CROWD_SCALE = 0.55
CROWD_POWER = 3.25
CROWD_FLOOR = 0.5
# `suggest` lists pairs of persons closer than this on average (the pair threshold: beyond
# it two faces are more likely two people).
SUGGEST_MAX_DISTANCE = 0.6


def state_dir() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "photocluster"


def default_db_path() -> Path:
    return state_dir() / DB_NAME


def resolve_db_path(db: str | os.PathLike[str] | None) -> Path:
    return Path(db).expanduser() if db else default_db_path()


@dataclass(frozen=True)
class DetectionSettings:
    """How faces are found. Changing any but ``engine`` re-detects photos on the next scan.

    Photos are decoded with their long side at most ``max_size``; the CNN then runs with
    dlib's pyramid upsampling ``upsample`` times (default 1: faces from ~40 px at the
    detection size, 2.5% of a 1600 px long side). ``upsample=None`` is "auto", the cheaper
    policy for dlib's own slow CPU path: small photos enlarged up to 2x (never beyond
    ``max_size``) and no pyramid upsampling (faces from ~80 px, 5% at 1600 px).
    """

    # A choice is given as its member or its string ("hog", "onnx"), and kept as the member.
    detector: Detector | str = Detector.CNN
    max_size: int = DEFAULT_MAX_SIZE
    upsample: int | None = DEFAULT_UPSAMPLE
    # Not part of `key`: both engines give the same faces (see benchmarks/scan_throughput.py).
    engine: Engine | str = Engine.AUTO

    def __post_init__(self) -> None:
        object.__setattr__(self, "detector", choice(Detector, self.detector, "--detector"))
        if not 64 <= self.max_size <= 20000:
            raise UsageError(f"--max-size must be between 64 and 20000 pixels, got {self.max_size}")
        object.__setattr__(self, "engine", choice(Engine, self.engine, "--engine"))
        if self.upsample is not None and not 0 <= self.upsample <= 3:
            raise UsageError(f"--upsample must be 'auto' or 0 to 3, got {self.upsample}")

    @property
    def key(self) -> str:
        """A short string stored with each photo so a change of settings is noticed."""
        up = "auto" if self.upsample is None else str(self.upsample)
        # v2: a descriptor is the mean over six views of the chip (detect.faces.describe).
        return f"{self.detector}/max{self.max_size}/up{up}/v2"

    @classmethod
    def parse_upsample(cls, value: str) -> int | None:
        if value.strip().lower() == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"--upsample must be 'auto' or a number, got {value!r}") from None
