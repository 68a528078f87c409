"""Where dlib's model files are: the ``.dat`` files of the ``face-recognition-models`` package.

The package is only a folder of data files, and it is never imported: its ``__init__``
imports ``pkg_resources``, which current setuptools no longer ships and fresh Python 3.12+
virtual environments lack, so importing it fails where the files are installed and
perfectly usable. The import system's spec of the package says where it is installed
without running that code.

``PHOTOCLUSTER_MODELS=/some/folder`` overrides the package: the folder holds the three
``.dat`` files under their usual names (for a machine where the ~100 MB sdist cannot be
installed, say a GPU box that gets only the files it needs copied over).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from photocluster.core.errors import ModelError

PACKAGE = "face_recognition_models"
MODELS_ENV = "PHOTOCLUSTER_MODELS"
_NOT_INSTALLED = "the face-recognition-models package is not installed: pip install face-recognition-models"


@dataclass(frozen=True)
class ModelFiles:
    detector_cnn: Path
    shape_predictor: Path
    recognizer: Path

    def all(self) -> dict[str, Path]:
        return {
            "mmod_human_face_detector": self.detector_cnn,
            "shape_predictor_5_face_landmarks": self.shape_predictor,
            "dlib_face_recognition_resnet_model_v1": self.recognizer,
        }


def _package_dirs() -> list[Path]:
    """The folders the package is installed in (one, unless it is a namespace package)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        # ValueError: a module object in sys.modules without a spec (someone's stub).
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(_NOT_INSTALLED)
    return [Path(location) for location in spec.submodule_search_locations]


@functools.cache
def model_files() -> ModelFiles:
    """The model files in ``$PHOTOCLUSTER_MODELS`` when it is set, else those shipped by the
    ``face-recognition-models`` package. Raises :class:`ModelError` when the package or one
    of the files is missing. Read once per process."""
    override = os.environ.get(MODELS_ENV, "").strip()
    if override:
        models = Path(override).expanduser()
        fix = f"copy it there from face-recognition-models, or unset {MODELS_ENV}"
    else:
        dirs = _package_dirs()
        models = next((d / "models" for d in dirs if (d / "models").is_dir()), dirs[0] / "models")
        fix = "reinstall face-recognition-models"
    files = ModelFiles(
        detector_cnn=models / "mmod_human_face_detector.dat",
        shape_predictor=models / "shape_predictor_5_face_landmarks.dat",
        recognizer=models / "dlib_face_recognition_resnet_model_v1.dat",
    )
    for name, path in files.all().items():
        if not path.is_file():
            where = f"{path} ({MODELS_ENV})" if override else str(path)
            raise ModelError(f"model file {name} missing at {where}: {fix}")
    return files
