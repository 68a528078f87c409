"""Settings and where state lives.

The database is found, in order: the ``--db`` option; ``$PHOTOCLUSTER_HOME/photocluster.db``;
``$XDG_DATA_HOME/photocluster/photocluster.db``; ``~/.local/share/photocluster/photocluster.db``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from photocluster.errors import UsageError

HOME_ENV = "PHOTOCLUSTER_HOME"
DB_NAME = "photocluster.db"

DETECTORS = ("cnn", "hog")
# Chosen by benchmarks/detection_size.py: see README, "Detection size".
DEFAULT_MAX_SIZE = 1600
# Small photos are enlarged by at most this factor before detection: enough to
# bring a 40 px face up to the ~80 px the MMOD detector needs, at 4x the pixels.
MAX_ENLARGE = 2.0
DEFAULT_THRESHOLD = 0.6
DEFAULT_MIN_SIZE = 2


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
    """How faces are found. Changing any of these re-detects photos on the next scan.

    ``upsample=None`` is "auto": photos are scaled so their long side is
    ``min(max_size, 2 x original)`` and dlib does no upsampling of its own. An
    integer asks for the classic dlib behaviour instead: no enlargement, and
    dlib's pyramid upsampling that many times.
    """

    detector: str = "cnn"
    max_size: int = DEFAULT_MAX_SIZE
    upsample: int | None = None

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise UsageError(f"--detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if not 64 <= self.max_size <= 20000:
            raise UsageError(f"--max-size must be between 64 and 20000 pixels, got {self.max_size}")
        if self.upsample is not None and not 0 <= self.upsample <= 3:
            raise UsageError(f"--upsample must be 'auto' or 0 to 3, got {self.upsample}")

    @property
    def key(self) -> str:
        """A short string stored with each photo so a change of settings is noticed."""
        up = "auto" if self.upsample is None else str(self.upsample)
        return f"{self.detector}/max{self.max_size}/up{up}/v1"

    @classmethod
    def parse_upsample(cls, value: str) -> int | None:
        if value.strip().lower() == "auto":
            return None
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"--upsample must be 'auto' or a number, got {value!r}") from None
