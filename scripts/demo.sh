#!/usr/bin/env bash
# The main job on sample photos: scan, cluster, export. Usage: scripts/demo.sh [PHOTO_FOLDER]
# Sample photos, in order: the folder given; ../shared/fixtures/face_recognition-knn beside
# the checkout; else the test photos shipped in face_recognition 1.3.0's source package on PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.demo
mkdir -p "$out"
photos="${1:-}"
if [ -z "$photos" ]; then
    fixtures="${PHOTOCLUSTER_FIXTURES:-../shared/fixtures}"
    if [ -d "$fixtures/face_recognition-knn" ]; then
        photos="$fixtures/face_recognition-knn"
    else
        photos="$out/samples/face_recognition-1.3.0/tests/test_images"
        if [ ! -d "$photos" ]; then
            echo "Fetching sample photos (face_recognition 1.3.0 source package, PyPI)..."
            python -m pip download --quiet --no-binary :all: --no-deps --dest "$out/samples" face_recognition==1.3.0
            tar -xzf "$out"/samples/face_recognition-1.3.0.tar.gz -C "$out/samples"
        fi
    fi
fi
db="$out/photocluster.db"
echo "== photocluster scan $photos"
photocluster scan "$photos" --db "$db"
echo "== photocluster clusters"
photocluster clusters --db "$db"
echo "== photocluster export $out/People"
photocluster export "$out/People" --db "$db"
echo
echo "Done: one folder per person in $out/People, index in $out/People/index.json"
