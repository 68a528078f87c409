#!/usr/bin/env bash
# The main job on sample photos: scan, cluster, export. Usage: scripts/demo.sh [PHOTO_FOLDER]
# Sample photos: the folder given, else the photos shipped in tests/photos (76 photos of about
# 15 people, a few photos each, a group photo and a collage; tests/photos/SOURCES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.demo
mkdir -p "$out"
photos="${1:-tests/photos}"
db="$out/photocluster.db"
echo "== photocluster scan $photos"
photocluster scan "$photos" --db "$db"
echo "== photocluster clusters"
photocluster clusters --db "$db"
echo "== photocluster export $out/People"
photocluster export "$out/People" --db "$db"
echo
python - "$out/People" "$db" <<'PY'
import json, sys
from pathlib import Path

dest, db = Path(sys.argv[1]), sys.argv[2]
index = json.loads((dest / "index.json").read_text())
persons, unknown = index["persons"], index["unknown"]["faces"]
sizes = ", ".join(str(p["face_count"]) for p in persons)
print(f"Found {len(persons)} persons (faces each: {sizes}) and {len(unknown)} unknown faces.")
print(f"Export: {dest}/ (one folder per person, unknown/, index.json); open {dest}/index.html")
print(f"Correct them in the browser: photocluster review --db {db}")
PY
