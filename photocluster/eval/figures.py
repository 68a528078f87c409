"""What the evaluations share in their results: figures written for JSON, and the range of
a distance threshold."""

from __future__ import annotations

import numpy as np

from photocluster.core.errors import UsageError


def json_number(value: float, ndigits: int = 6) -> float | None:
    """A float for JSON: rounded, and None for NaN or infinity (JSON has neither)."""
    return round(float(value), ndigits) if np.isfinite(value) else None


def check_threshold(threshold: float) -> None:
    if not (np.isfinite(threshold) and 0.0 < threshold <= 2.0):
        raise UsageError(f"--threshold must be above 0 and at most 2, got {threshold}")
