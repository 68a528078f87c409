"""photocluster: find every face in a photo library and group the faces by person.

The library API, in pipeline order::

    from photocluster import Store, scan, recluster, persons, export

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
# would be replaced by the module once anything imports ``photocluster.export``.
from photocluster.config import DetectionSettings
from photocluster.errors import PhotoclusterError
from photocluster.export import export
from photocluster.faces import analyze_file
from photocluster.persons import persons, recluster
from photocluster.pipeline import scan
from photocluster.store import Store
from photocluster.types import Box, Face, Person, PersonFace, Photo

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
