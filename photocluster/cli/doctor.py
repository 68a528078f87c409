"""``photocluster doctor``: the dlib build, the engines (onnxruntime, torch), the model files, a photo's cost here."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from photocluster.cli.common import JsonOption, err, handle_errors, out, print_json
from photocluster.core.choices import Engine
from photocluster.core.config import DetectionSettings
from photocluster.version import __version__


def doctor(
    engine: Annotated[Engine, typer.Option(help="Engine to measure.")] = Engine.AUTO,
    measure: Annotated[bool, typer.Option(help="Time one synthetic photo on this machine.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Show the dlib build, the engine in use, onnxruntime's execution providers, PyTorch and
    its CUDA device (the torch engine), the model files and what a photo costs here.

    \b
    Example: photocluster doctor --engine dlib
    """
    with handle_errors():
        doc = _diagnose(engine, measure)
    if as_json:
        print_json(doc)
        return
    for key, value in doc.items():
        if key == "models":
            out.print("models:")
            for name, info in value.items():
                out.print(f"  {name}: {info['path']} ({info['bytes']} bytes, sha256 {info['sha256'][:16]}...)")
        elif key == "measured":
            out.print(
                f"measured: {value['seconds']} s for a {value['photo']} photo; about "
                f"{value['estimated_seconds_per_photo_at_defaults']} s per photo at the defaults",
            )
        else:
            out.print(f"{key}: {value}")


def _diagnose(engine: Engine, measure: bool) -> dict[str, Any]:
    """The report, through :mod:`photocluster.detect.faces` (the CLI never imports dlib itself)."""
    import platform

    from photocluster.detect import faces as fc

    settings = DetectionSettings(engine=engine)
    build = fc.dlib_build()
    chosen = fc.resolve_engine(engine)
    doc: dict[str, Any] = {
        "photocluster": __version__,
        "python": platform.python_version(),
        "dlib": build.describe(),
        "dlib_cuda": build.cuda,
        "cuda_devices": build.cuda_devices,
        "avx": build.avx,
        "blas": build.blas,
        "engine": chosen,
        "onnxruntime": None,
        "models": {
            name: {"path": os.fsdecode(path), "bytes": path.stat().st_size, "sha256": fc.file_sha256(path)}
            for name, path in fc.model_files().all().items()
        },
    }
    if fc.onnx_available():
        import onnxruntime

        doc["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    doc.update(_torch_report())
    if measure:
        # dlib-bin needs ~10 s per megapixel: measure it on a smaller photo and scale.
        w, h = (1600, 1200) if chosen in ("onnx", "torch") or build.cuda else (640, 480)
        with err.status(f"Timing a {w}x{h} photo with the {chosen} engine"):
            probe = fc.measure_cost(settings, w, h)
        doc["measured"] = {
            "photo": f"{w}x{h}",
            "seconds": round(probe.seconds, 3),
            "estimated_seconds_per_photo_at_defaults": round(probe.estimated_default_seconds, 2),
            "threads": fc._threads,
        }
    return doc


def _torch_report() -> dict[str, Any]:
    """The torch engine: whether PyTorch is there, its build, and the device it would run on."""
    from photocluster.detect.engine.torch_net import torch_info

    info = torch_info()
    return {
        "torch": info.describe(),
        "torch_cuda": info.cuda_available,
        "cuda_device": info.device_name if info.cuda_available else None,
    }
