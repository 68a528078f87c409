"""photocluster: find every face in a photo library and group the faces by person."""

from photocluster.errors import PhotoclusterError

__version__ = "0.1.0"

__all__ = ["PhotoclusterError", "__version__"]
