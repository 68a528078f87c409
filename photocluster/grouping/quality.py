"""How good a face is to show: the cover of a person's card.

The store keeps no measure of sharpness; what it has is the detector's confidence (blurred,
turned and half-hidden faces score low), the face's size in the photo (a big face is a sharp
thumbnail) and the five landmarks of dlib's shape predictor (the eye corners and the nose),
whose symmetry tells a frontal face from one turned away. Pure functions over arrays.
"""

from __future__ import annotations

import numpy as np

# A face this wide (photo pixels) or wider is as sharp as a thumbnail (128 px) can show it.
FULL_SIZE = 160.0


def face_quality(boxes: np.ndarray, confidence: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A score in [0, 1] per face, higher for a frontal, large, confidently detected face.

    ``boxes`` (n, 4) as (left, top, right, bottom), ``confidence`` (n,) (the CNN's score, near
    1 for a clear face; a face the user drew counts as 1), ``landmarks`` (n, 5, 2): dlib's 5
    points, the two corners of one eye, of the other, then the nose. Frontal: the nose lies
    half-way between the eyes, measured along the line through them (a turned head moves it
    towards one eye); a head tilted sideways is not penalised (alignment undoes it).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    conf = np.clip(np.asarray(confidence, dtype=np.float64).reshape(-1), 0.0, 1.0)
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    eye_a = pts[:, 0:2].mean(axis=1)
    eye_b = pts[:, 2:4].mean(axis=1)
    axis = eye_b - eye_a
    half = np.linalg.norm(axis, axis=1) / 2
    mid = (eye_a + eye_b) / 2
    along = np.einsum("ij,ij->i", pts[:, 4] - mid, axis) / np.maximum(2 * half, 1e-9)
    frontal = np.clip(1.0 - np.abs(along) / np.maximum(half, 1e-9), 0.0, 1.0)
    side = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0, None))
    size = np.minimum(1.0, side / FULL_SIZE)
    out: np.ndarray = frontal * (0.5 + 0.5 * size) * (0.5 + 0.5 * conf)
    return out
