"""What the cap on second looks saves (issue #24): one photo without faces (the fixtures'
``dlib-faces/dogs.jpg``, 900x916) whose sidecar tags ``--regions`` regions; the tag import
timed with second looks uncapped (each region searched again at a higher upsampling) and
with ``MAX_SECOND_LOOKS``, in one run, the photo decoded once for its second looks in both.

    .venv/bin/python benchmarks/second_looks.py --regions 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from photocluster.app import tags as app_tags
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.store import Store

FIXTURES = Path(os.environ.get("PHOTOCLUSTER_FIXTURES", "/work/shared/fixtures"))
NS = (
    'xmlns:x="adobe:ns:meta/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
    'xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/" '
    'xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"'
)


def sidecar(n: int, per_row: int = 5) -> bytes:
    side = 0.8 / per_row
    items = "".join(
        f'<rdf:li rdf:parseType="Resource"><mwg-rs:Name>P{k}</mwg-rs:Name><mwg-rs:Type>Face</mwg-rs:Type>'
        f'<mwg-rs:Area stArea:x="{(k % per_row + 0.5) / per_row}" stArea:y="{(k // per_row % per_row + 0.5) / per_row}"'
        f' stArea:w="{side}" stArea:h="{side}" stArea:unit="normalized"/></rdf:li>'
        for k in range(n)
    )
    return (
        f'<x:xmpmeta {NS}><rdf:RDF><rdf:Description rdf:about=""><mwg-rs:Regions rdf:parseType="Resource">'
        f"<mwg-rs:RegionList><rdf:Bag>{items}</rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, default=20)
    args = parser.parse_args()
    settings = DetectionSettings(engine="onnx")
    capped = app_tags.MAX_SECOND_LOOKS
    out: dict[str, object] = {"regions": args.regions, "cap": capped}
    with tempfile.TemporaryDirectory() as tmp:
        for label, cap in (("uncapped", 10**9), ("capped", capped)):
            lib = Path(tmp) / label
            lib.mkdir()
            shutil.copy(FIXTURES / "dlib-faces" / "dogs.jpg", lib / "dogs.jpg")
            (lib / "dogs.jpg.xmp").write_bytes(sidecar(args.regions))
            app_tags.MAX_SECOND_LOOKS = cap
            with Store(Path(tmp) / f"{label}.db") as store:
                scan(store, [lib], settings, tags=False)
                start = time.perf_counter()
                report = app_tags.import_tags(store, [lib / "dogs.jpg"], settings)
                out[f"{label}_s"] = round(time.perf_counter() - start, 1)
                out[f"{label}_unmatched"] = len(report.unmatched)
    app_tags.MAX_SECOND_LOOKS = capped
    out["ratio"] = round(float(out["capped_s"]) / float(out["uncapped_s"]), 2)  # type: ignore[arg-type]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
