#!/usr/bin/env bash
# Prepares, on a machine with network access and this checkout's .venv, the two folders that
# benchmarks/gpu_check.sh needs on a GPU machine that has no network and none of
# photocluster's own dependencies beyond Python, numpy, Pillow, onnx, onnxruntime, typer, rich
# and torch:
#
#   .whl/      wheels for `pip install --no-index --no-deps --target`: dlib-bin for CPython
#              3.11, 3.12 and 3.13 (gpu_check.sh installs the one matching the device's python3)
#   .gpudata/  holdout/  300 holdout photos (150x150, ../shared/holdout/images)
#              fixtures/ 19 fixture photos (flattened: dir__name.jpg)
#              models/   dlib's three .dat files (copied from face-recognition-models, which is
#                        an sdist of ~100 MB, too big to carry; PHOTOCLUSTER_MODELS points here)
#
# Both folders are added to .git/info/exclude (never committed) and must be named in the
# device run's `carry`. About 50 MB together (the limit for what travels is 64 MiB).
#
# Usage, from the repository root:  bash benchmarks/gpu_wheels.sh [SHARED_DIR]   (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${1:-../shared}"
PY=".venv/bin/python"

# NAME==VERSION of every wheel to carry. Keep this list in step with gpu_check.sh's header.
DLIB_BIN="dlib-bin==20.0.1.post1"
PYTHONS=(3.11 3.12 3.13)

for entry in /.whl/ /.gpudata/; do
    grep -qxF "$entry" .git/info/exclude 2>/dev/null || echo "$entry" >> .git/info/exclude
done

mkdir -p .whl
for version in "${PYTHONS[@]}"; do
    python3 -m pip download --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "$DLIB_BIN"
done

mkdir -p .gpudata/holdout .gpudata/fixtures .gpudata/models
# The first 300 holdout photos by name (the names are SHA-1s: an arbitrary, fixed sample).
mapfile -t HOLDOUT < <(find "$SHARED/holdout/images" -name '*.jpg' | sort)
cp "${HOLDOUT[@]:0:300}" .gpudata/holdout/
FIXTURES=(
    deepface-dataset/img10.jpg
    deepface-dataset/img22.jpg
    deepface-dataset/img57.jpg
    deepface-dataset/selfie-many-people.jpg
    dlib-faces/2007_007763.jpg
    dlib-faces/2008_001322.jpg
    dlib-faces/2008_002079.jpg
    dlib-faces/2008_002470.jpg
    dlib-faces/2008_002506.jpg
    dlib-faces/2008_004176.jpg
    dlib-faces/2008_007676.jpg
    dlib-faces/2009_004587.jpg
    dlib-faces/Tom_Cruise_avp_2014_4.jpg
    dlib-faces/bald_guys.jpg
    face_recognition-examples/obama-480p.jpg
    face_recognition-examples/two_people.jpg
    face_recognition-knn/test/kit_with_rose.jpg
    face_recognition-knn/test/obama1.jpg
    face_recognition-knn/test/obama_and_biden.jpg
)
for rel in "${FIXTURES[@]}"; do
    cp "$SHARED/fixtures/$rel" ".gpudata/fixtures/${rel//\//__}"
done
# The model files, wherever this venv's photocluster finds them.
"$PY" - <<'EOF'
import shutil
from pathlib import Path

from photocluster.detect.models import model_files

for path in model_files().all().values():
    shutil.copy2(path, Path(".gpudata/models") / path.name)
EOF

ls -la .whl
du -sh .whl .gpudata
du -ch .whl .gpudata | tail -1
