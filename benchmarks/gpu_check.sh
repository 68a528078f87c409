#!/usr/bin/env bash
# The GPU check of the torch engine (issue 17), prepared to run once, unattended, in under five
# minutes, on a machine with an NVIDIA GPU and no network (this workplace's H100/H200 image:
# python3 with torch, numpy, Pillow, onnx, onnxruntime (CPU), typer and rich; no dlib, no
# face-recognition-models).
#
# Before (on the dev machine, from the repository root):
#     bash benchmarks/gpu_wheels.sh          # fills .whl/ and .gpudata/ (ignored by git), ~50 MB
# Then on the device, from the repository root, carrying both folders:
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpudata"], timeout_s=420)
#
# Wheels it installs from .whl/ (pip --no-index --no-deps --target /tmp/site; only those that
# match the device's python3: pure-python wheels and cp<XY> ones):
#     dlib-bin==20.0.1.post1   cp311, cp312 and cp313 manylinux_2_28 x86_64 wheels (~4 MB each);
#                              dlib gives the 5-point landmarks and the aligned chips. Without
#                              it the benchmark still runs and compares the networks on box crops.
# Not carried: face-recognition-models (an sdist of ~100 MB): its three .dat files are in
# .gpudata/models/ and PHOTOCLUSTER_MODELS points there. pillow-heif is not needed (HEIC only).
#
# What it does, each step logged with its time:
#   1. python3 --version, nvidia-smi, which of photocluster's dependencies import (and versions);
#   2. installs the wheels above, PYTHONPATH=/tmp/site:$PWD (photocluster from this checkout);
#   3. photocluster doctor --no-measure --json  -> $OUT/doctor.json (torch, CUDA device, providers);
#   4. benchmarks/gpu_throughput.py .gpudata     -> $OUT/gpu.json (the figures: see its docstring);
#   5. photocluster scan --engine torch on .gpudata/fixtures (end to end, one process) -> $OUT/scan.json.
# Everything printed is also in $OUT/gpu_check.log. Exit status: that of step 4 (0: the torch
# engine agrees with the onnx engine and its canvases are bit-exact), or 3 when it could not run.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
START=$(date +%s)
say() { echo "== [$(( $(date +%s) - START ))s] $*"; }

say "python"
python3 --version
command -v python3
say "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi not available"

say "wheels"
PYTAG=$(python3 -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheels=()
for w in .whl/*.whl; do
    [ -e "$w" ] || continue
    case "$(basename "$w")" in
        *-py3-none-any.whl | *-py2.py3-none-any.whl | *-"$PYTAG"-*) wheels+=("$w") ;;
        *) echo "skipping $(basename "$w") (not for $PYTAG)" ;;
    esac
done
if [ "${#wheels[@]}" -gt 0 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "${wheels[@]}" \
        && echo "installed: ${wheels[*]}" \
        || echo "WARNING: the wheels did not install; going on without them"
else
    echo "WARNING: no wheel in .whl/ for $PYTAG: dlib will be missing (chips become box crops)"
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if [ -d .gpudata/models ]; then
    export PHOTOCLUSTER_MODELS="$PWD/.gpudata/models"
else
    echo "WARNING: .gpudata/models missing: the model files must come from face-recognition-models"
fi

say "imports"
python3 - <<'EOF'
import importlib
for name in ("numpy", "PIL", "onnx", "onnxruntime", "torch", "dlib", "typer", "rich", "photocluster"):
    try:
        module = importlib.import_module(name)
        print(f"  {name:13s} {getattr(module, '__version__', '?')}  ({getattr(module, '__file__', '?')})")
    except Exception as exc:  # noqa: BLE001 - report every missing piece, then go on
        print(f"  {name:13s} MISSING: {type(exc).__name__}: {exc}")
import torch
print(f"  torch.cuda.is_available() = {torch.cuda.is_available()}, torch.version.cuda = {torch.version.cuda}")
if torch.cuda.is_available():
    print(f"  device: {torch.cuda.get_device_name()}")
EOF
if [ ! -d .gpudata/holdout ] && [ ! -d .gpudata/fixtures ]; then
    echo "ERROR: .gpudata/ is missing: run benchmarks/gpu_wheels.sh here first, then carry .gpudata" >&2
    exit 3
fi

say "photocluster doctor"
timeout 60 python3 -m photocluster doctor --no-measure --json > "$OUT/doctor.json"
echo "doctor exit status $?"
cat "$OUT/doctor.json"

say "benchmark (torch engine vs onnx engine)"
DEVICE=cuda
python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || {
    echo "WARNING: torch sees no CUDA device: measuring on the CPU, with fewer photos"
    DEVICE=cpu
}
if [ "$DEVICE" = cuda ]; then
    ARGS=(--holdout 300 --big 20 --native 8 --budget 170)
else
    ARGS=(--holdout 20 --big 1 --native 2 --onnx-holdout 10 --onnx-native 2 --onnx-big 1 --budget 170)
fi
timeout 230 python3 benchmarks/gpu_throughput.py .gpudata --device "$DEVICE" "${ARGS[@]}" --json "$OUT/gpu.json"
STATUS=$?
echo "benchmark exit status $STATUS (0: agreement and bit-exact canvases; 1: see verdict; 124: timed out)"

say "scan --engine torch, end to end"
rm -f /tmp/gpu-check-scan.db
timeout 45 python3 -m photocluster scan --engine torch --workers 1 --db /tmp/gpu-check-scan.db --json \
    .gpudata/fixtures > "$OUT/scan.json"
echo "scan exit status $? (124: timed out)"
head -c 3000 "$OUT/scan.json"
echo

say "done"
[ -f "$OUT/gpu.json" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(d.get('verdict'), indent=1))" "$OUT/gpu.json"
exit "$STATUS"
