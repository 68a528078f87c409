"""photocluster: find every face in a photo library and group the faces by person.

The library API, in pipeline order::

    from photocluster import Store, export, persons, recluster, scan

    with Store("photos.db") as store:
        scan(store, ["~/Pictures"])          # detect, align, embed; incremental
        recluster(store)                     # faces -> persons (two-stage clustering)
        for person in persons(store):        # largest first, unknown last
            print(person.label, len(person.faces))
        export(store, "People")              # folders + index.json

Importing is cheap: the dlib models load on first use.
"""

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
from photocluster.version import __version__

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
