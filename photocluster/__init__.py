"""photocluster: find every face in a photo library and group the faces by person.

The library API, in pipeline order::

    from photocluster import Store, scan, recluster
    from photocluster.app import recluster as persons
    from photocluster.exporter import run as export

    with Store("photos.db") as store:
        scan(store, ["~/Pictures"])          # detect, align, embed; incremental
        recluster(store, threshold=0.6)      # Chinese whispers -> persons
        for person in persons(store):        # largest first, unknown last
            print(person.label, len(person.faces))
        export(store, "People")              # folders + index.json

Importing is cheap: the dlib models load on first use.
"""

__version__ = "0.1.0"

# Bound eagerly, after __version__: a lazy attribute named like its submodule
# would be replaced by the module once anything imports ``photocluster.exporter.run``.
from photocluster.app.recluster import persons, recluster
from photocluster.app.scan import scan
from photocluster.core.config import DetectionSettings
from photocluster.core.errors import PhotoclusterError
from photocluster.core.types import Box, Face, Person, PersonFace, Photo
from photocluster.detect.faces import analyze_file
from photocluster.exporter.run import export
from photocluster.store.database import Store

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
