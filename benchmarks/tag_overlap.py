"""How much a face tag overlaps its face, and the faces beside it (issue #15: ``MATCH_IOU``).

People draw tag regions larger than a detector's box (hair, chin) and not quite centred.
On the crowded PASCAL VOC fixture photos (``dlib-faces``: 9 photos, 7-24 faces each, boxes
drawn by hand in dlib's training style), each face box stands for a detection and the same
box scaled by ``s`` (centred, then moved up by 10% of its height, as hair makes it) for the
tag a person drew. For each ``s``: the smallest overlap (IoU) of a tag with its own face,
and the largest with any other face of the photo; and how many tags
:func:`photocluster.app.tags.match_tags` gives the right face at ``MATCH_IOU``.

    .venv/bin/python benchmarks/tag_overlap.py
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from photocluster.app.tags import MATCH_IOU, match_tags
from photocluster.core.types import Box

FIXTURES = Path(os.environ.get("PHOTOCLUSTER_FIXTURES", "/work/shared/fixtures"))
SCALES = (0.8, 1.0, 1.2, 1.4, 1.6, 1.7, 1.8, 2.0, 2.2)


def photos() -> list[list[Box]]:
    out = []
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(FIXTURES / "dlib-faces" / name).getroot().iter("image"):
            boxes = []
            for b in image.iter("box"):
                left, top = float(b.get("left", 0)), float(b.get("top", 0))
                boxes.append(Box(left, top, left + float(b.get("width", 0)), top + float(b.get("height", 0))))
            if len(boxes) > 1:
                out.append(boxes)
    return out


def drawn(box: Box, s: float) -> Box:
    cx, cy = box.center
    w, h = box.width * s, box.height * s
    cy -= 0.1 * box.height * (s - 1)
    return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def main() -> None:
    rows = []
    crowd = photos()
    for s in SCALES:
        own, other, right, total = 1.0, 0.0, 0, 0
        for faces in crowd:
            tags = [drawn(f, s) for f in faces]
            for k, t in enumerate(tags):
                own = min(own, t.iou(faces[k]))
                other = max([other, *(t.iou(f) for j, f in enumerate(faces) if j != k)])
            match = match_tags(tags, faces, MATCH_IOU)
            right += sum(m == k for k, m in enumerate(match))
            total += len(tags)
        rows.append({"scale": s, "own_min": round(own, 3), "other_max": round(other, 3), "right": right, "tags": total})
        print(f"s={s:.1f}  own IoU >= {own:.3f}  other IoU <= {other:.3f}  right {right}/{total}", file=sys.stderr)
    print(json.dumps({"match_iou": MATCH_IOU, "photos": len(crowd), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
