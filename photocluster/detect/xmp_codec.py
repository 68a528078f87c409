"""The XMP face-region vocabulary, shared by reading tags (:mod:`photocluster.detect.tags`)
and writing sidecars (:mod:`photocluster.exporter.xmp`): the XML namespaces, the names of
the elements, RDF as XMP writers spell it, and Microsoft's rectangle.

- MWG regions (``mwg-rs:Regions``): a ``RegionList`` of structs, each with a ``Type``
  (``Face``), a ``Name`` and an ``Area``: the normalised centre ``x``, ``y`` and size ``w``,
  ``h`` (0..1) of the image as stored.
- Microsoft's regions (``MP:RegionInfo``): ``Regions`` of structs with a
  ``PersonDisplayName`` and a ``Rectangle``, "left, top, width, height", normalised.
- ``photocluster:FaceId`` marks a region photocluster's own export wrote.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    # Marks the regions photocluster wrote, so a re-export replaces them and nothing else.
    "photocluster": "urn:photocluster:xmp:1.0/",
    # Microsoft's regions (Windows Photo Gallery, Windows' file properties, digiKam).
    "MP": "http://ns.microsoft.com/photo/1.2/",
    "MPRI": "http://ns.microsoft.com/photo/1.2/t/RegionInfo#",
    "MPReg": "http://ns.microsoft.com/photo/1.2/t/Region#",
}
# A packet that names neither holds no region (most photos carry XMP without any).
REGION_URIS = (NS["mwg-rs"].encode(), NS["MP"].encode())


def q(prefix: str, name: str) -> str:
    """The ElementTree name of ``prefix:name``."""
    return f"{{{NS[prefix]}}}{name}"


XMPMETA = q("x", "xmpmeta")
XMPTK = q("x", "xmptk")
RDF = q("rdf", "RDF")
DESCRIPTION = q("rdf", "Description")
ABOUT = q("rdf", "about")
PARSE_TYPE = q("rdf", "parseType")
BAG = q("rdf", "Bag")
ARRAYS = (BAG, q("rdf", "Seq"), q("rdf", "Alt"))
LI = q("rdf", "li")
REGIONS = q("mwg-rs", "Regions")
REGION_LIST = q("mwg-rs", "RegionList")
APPLIED_TO = q("mwg-rs", "AppliedToDimensions")
AREA = q("mwg-rs", "Area")
NAME = q("mwg-rs", "Name")
TYPE = q("mwg-rs", "Type")
FACE_ID = q("photocluster", "FaceId")
MP_INFO = q("MP", "RegionInfo")
MP_REGIONS = q("MPRI", "Regions")
MP_NAME = q("MPReg", "PersonDisplayName")
MP_RECTANGLE = q("MPReg", "Rectangle")


# -- RDF, as XMP writers spell it -------------------------------------------------------


def rdf_struct(elem: ET.Element) -> ET.Element:
    """The element that holds a struct's fields: a ``rdf:Description`` child, or ``elem`` itself
    (``rdf:parseType="Resource"`` or property attributes)."""
    desc = elem.find(DESCRIPTION)
    return desc if desc is not None else elem


def rdf_value(struct: ET.Element, qname: str) -> str | None:
    """A simple field of a struct, written as an attribute or as a child element."""
    if qname in struct.attrib:
        return struct.attrib[qname]
    child = struct.find(qname)
    return None if child is None else (child.text or "").strip()


def rdf_items(struct: ET.Element, qname: str) -> Iterator[ET.Element]:
    """The structs of an array field (``rdf:Bag``/``Seq``/``Alt`` of ``rdf:li``; an ``rdf:li``
    right under the field is taken too). Only those: a list nested in an item is not this
    list's, and never walking below the items keeps the work linear in the packet however
    deep a hostile one nests."""
    holder = struct.find(qname)
    if holder is None:
        return
    for child in holder:
        if child.tag == LI:
            yield rdf_struct(child)
        elif child.tag in ARRAYS:
            for li in child:
                if li.tag == LI:
                    yield rdf_struct(li)


# -- numbers ------------------------------------------------------------------------------


def number(text: str | None) -> float | None:
    """A finite number read from a field, or None."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value == value and abs(value) != float("inf") else None


def format_number(value: float) -> str:
    """A normalised coordinate as written: six decimals at most, no trailing zeros."""
    text = f"{round(value, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def mp_rectangle(x: float, y: float, w: float, h: float) -> str:
    """Microsoft's ``Rectangle`` of an MWG area (centre ``x``, ``y``, size ``w``, ``h``):
    left, top, width, height."""
    return ", ".join(format_number(v) for v in (x - w / 2, y - h / 2, w, h))


def mp_area(rectangle: str | None) -> tuple[float, float, float, float] | None:
    """The MWG area (centre x, y, w, h) of Microsoft's ``Rectangle``; None when it is not
    four numbers."""
    parts = [number(p) for p in (rectangle or "").split(",")]
    if len(parts) != 4:
        return None
    left, top, w, h = parts
    if left is None or top is None or w is None or h is None:
        return None
    # Microsoft gives the top-left corner; MWG the centre.
    return left + w / 2, top + h / 2, w, h
