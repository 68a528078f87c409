"""photocluster: find every face in a photo library and group the faces by person.

The library API, in pipeline order::

    from photocluster import Store, export, persons, recluster, scan

    with Store("photos.db") as store:
        scan(store, ["~/Pictures"])          # detect, align, embed; incremental
        recluster(store)                     # faces -> persons (two-stage clustering)
        for person in persons(store):        # largest first, unknown last
            print(person.label, len(person.faces))
        export(store, "People")              # folders + index.json

Importing is cheap: each name loads its module on first use (the CLI's `clusters` then
never imports the exporters), and the dlib models load on first use of a detector.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from photocluster.version import __version__

if TYPE_CHECKING:
    # The export package is named ``exporter`` (and the use case ``app.export``) so that no
    # submodule import can replace the ``export`` function bound here.
    from photocluster.app.export import export
    from photocluster.app.listing import persons
    from photocluster.app.recluster import recluster
    from photocluster.app.scan import scan
    from photocluster.core.config import DetectionSettings
    from photocluster.core.errors import PhotoclusterError
    from photocluster.core.types import Box, Face, Person, PersonFace, Photo
    from photocluster.detect.faces import analyze_file
    from photocluster.store import Store

# Each public name and the module that defines it.
_WHERE = {
    "export": "photocluster.app.export",
    "persons": "photocluster.app.listing",
    "recluster": "photocluster.app.recluster",
    "scan": "photocluster.app.scan",
    "DetectionSettings": "photocluster.core.config",
    "PhotoclusterError": "photocluster.core.errors",
    "Box": "photocluster.core.types",
    "Face": "photocluster.core.types",
    "Person": "photocluster.core.types",
    "PersonFace": "photocluster.core.types",
    "Photo": "photocluster.core.types",
    "analyze_file": "photocluster.detect.faces",
    "Store": "photocluster.store",
}

__all__ = [
    "Box",
    "DetectionSettings",
    "Face",
    "Person",
    "PersonFace",
    "Photo",
    "PhotoclusterError",
    "Store",
    "__version__",
    "analyze_file",
    "export",
    "persons",
    "recluster",
    "scan",
]


def __getattr__(name: str) -> Any:
    """A public name, its module imported on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'photocluster' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value  # bound once: later lookups never come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
