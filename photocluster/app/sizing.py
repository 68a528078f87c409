"""How many processes a scan runs detection in, from the engine, the cores and the memory."""

from __future__ import annotations

import os

from photocluster.core.config import DetectionSettings
from photocluster.detect import faces as fc


def detection_memory_bytes(settings: DetectionSettings) -> int:
    """Rough peak memory of one process detecting at these settings (a 4:3 photo at
    ``max_size``). Measured: dlib-bin's CNN takes ~1 GB per megapixel of (upsampled)
    detection image (0.8 GB at 1024x731, 1.8 GB at 1600x1142, without upsampling); the
    onnx engine ~0.2 GB plus ~0.09 GB per megapixel (0.23 GB at 1024 px, 0.88 GB at 1600 px
    upsampled once), as it runs large inputs in bands."""
    megapixels = settings.max_size * settings.max_size * 0.75 / 1e6
    if settings.upsample:
        megapixels *= 4**settings.upsample
    if fc.resolve_engine(settings.engine) == "onnx":
        return int((0.2 + 0.09 * megapixels) * 2**30)
    return int((0.25 + 0.9 * megapixels) * 2**30)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def default_workers(settings: DetectionSettings | None = None) -> int:
    """With the onnx engine, one process whose models use every core as threads: about as
    fast as a process per core (24 s against 20 s for four 12 MP photos on 2 cores) for half
    the memory (1.0 GB against 2.0 GB in all). With dlib itself (one thread per model), one
    process per core, at most 4, and no more than the available memory holds. The torch
    engine: one process, which owns the GPU."""
    settings = settings or DetectionSettings()
    # The torch engine too: one process owns the GPU (or uses every core as threads).
    if fc.resolve_engine(settings.engine) in ("onnx", "torch"):
        return 1
    n = max(1, min(4, os.cpu_count() or 1))
    available = _available_memory()
    if available is not None:
        n = min(n, max(1, available // detection_memory_bytes(settings)))
    return n
