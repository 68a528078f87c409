"""photocluster's version, in a module of its own (as datasette keeps it): every layer reads
it from here, so nothing below the public API imports the root package."""

__version__ = "0.1.0"
