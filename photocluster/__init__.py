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

from typing import TYPE_CHECKING

from photocluster.config import DetectionSettings
from photocluster.errors import PhotoclusterError
from photocluster.types import Box, Face, Person, PersonFace, Photo

if TYPE_CHECKING:
    from photocluster.export import export
    from photocluster.faces import analyze_file
    from photocluster.persons import persons, recluster
    from photocluster.pipeline import scan
    from photocluster.store import Store

__version__ = "0.1.0"

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


def __getattr__(name: str) -> object:
    # The heavier modules are imported on first use, keeping `import photocluster` light.
    if name == "Store":
        from photocluster.store import Store

        return Store
    if name == "scan":
        from photocluster.pipeline import scan

        return scan
    if name in ("recluster", "persons"):
        from photocluster import persons as _persons

        return getattr(_persons, name)
    if name == "export":
        from photocluster.export import export

        return export
    if name == "analyze_file":
        from photocluster.faces import analyze_file

        return analyze_file
    raise AttributeError(f"module 'photocluster' has no attribute {name!r}")
