"""dlib's face detector and face descriptor, same weights, run on onnxruntime.

:class:`OnnxEngine` reads the ``.dat`` files of the ``face-recognition-models`` package (the
ones photocluster's dlib stage loads), rebuilds dlib's networks as ONNX graphs in memory and
returns what dlib's python API returns for them:

- ``detect``: ``dlib.cnn_face_detection_model_v1(path)(pixels, upsample)``, including dlib's
  image pyramid, pyramid upsampling and non-max suppression, so the rectangles are the same and
  the confidences agree to about 1e-6;
- ``embed``: ``dlib.face_recognition_model_v1(path).compute_face_descriptor(chips)``, agreeing
  to about 1e-6 per component.

``OnnxEngine(backend="torch")`` runs the same two networks on PyTorch instead (a CUDA GPU when
one is seen: ``torch_net``), with the detector's image pyramid built on the device
(``torch_pyramid``) and ``detect_batch`` running several photos' canvases at once.

Modules, each importing only those listed after it: ``mmod`` (the detector) and ``resnet``
(the embedder) -> ``backend`` (onnx or torch) -> ``torch_net`` -> ``torch_pyramid`` ->
``pyramid`` (dlib's pyramid, shared by both backends) and ``onnx_graph`` -> ``dlib_format``.

Importing this package is cheap; onnx, onnxruntime or torch load, and the models are parsed,
on the first call that needs them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photocluster.detect.models import model_files

if TYPE_CHECKING:
    from photocluster.detect.engine.mmod import Detector
    from photocluster.detect.engine.resnet import Embedder

__all__ = ["OnnxEngine"]


class OnnxEngine:
    """dlib's CNN face detector and ResNet face descriptor on onnxruntime.

    ``threads`` is onnxruntime's intra-op thread count for each model. Each model is loaded on
    first use. ``detector_path``/``recognizer_path`` default to the face-recognition-models
    files. One engine may be shared by threads: onnxruntime sessions are thread-safe.
    ``backend="torch"`` runs both networks on PyTorch (see :mod:`.torch_net`).
    """

    def __init__(
        self,
        threads: int = 1,
        detector_path: Path | None = None,
        recognizer_path: Path | None = None,
        backend: str = "onnx",
    ) -> None:
        self.threads = max(1, int(threads))
        self.backend = backend
        self._detector_path = detector_path
        self._recognizer_path = recognizer_path
        self._detector: Detector | None = None
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    from photocluster.detect.engine.mmod import Detector

                    path = self._detector_path or model_files().detector_cnn
                    self._detector = Detector(path, self.threads, self.backend)
        return self._detector

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from photocluster.detect.engine.resnet import Embedder

                    path = self._recognizer_path or model_files().recognizer
                    self._embedder = Embedder(path, self.threads, self.backend)
        return self._embedder

    def detect(self, pixels: np.ndarray, upsample: int = 0) -> list[tuple[tuple[int, int, int, int], float]]:
        """Exactly what ``dlib.cnn_face_detection_model_v1(path)(pixels, upsample)`` returns:
        ``[((left, top, right, bottom), confidence), ...]`` with dlib's inclusive rectangle
        ints, best first. ``pixels``: (h, w, 3) RGB or (h, w) grey, uint8."""
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        return self.detector.detect(pixels, upsample)

    def detect_batch(
        self, images: list[np.ndarray], upsample: int = 0
    ) -> list[list[tuple[tuple[int, int, int, int], float]]]:
        """:meth:`detect` for several photos, in order; on the torch backend their canvases run
        in batches (the results are those of one photo at a time)."""
        if upsample < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        return self.detector.detect_batch(images, upsample)

    def embed(self, chips: list[np.ndarray]) -> np.ndarray:
        """Exactly what ``dlib.face_recognition_model_v1(path).compute_face_descriptor(chips)``
        returns for aligned 150x150x3 uint8 chips (no jitter): (n, 128) float32."""
        return self.embedder.embed(chips)

    def embed_views(self, big_chips: list[np.ndarray], shift: int) -> np.ndarray:
        """:meth:`embed` of six views of each chip of ``big_chips`` ((150 + 2 ``shift``) pixels
        square): its centre crop, that crop moved ``shift`` rows up and down, and the mirror
        image of each, in that order (crop, mirror, up, mirror, down, mirror): (n, 6, 128) float32.
        On onnxruntime, in one graph that shares the network's first layers between the shifts."""
        return self.embedder.embed_views(big_chips, shift)
