"""The errors photocluster raises. Each message is one line a user can act on.

The CLI renders these once (stderr, exit code); the library never prints.
"""

from __future__ import annotations

import os


class PhotoclusterError(Exception):
    """Base class: something the user can fix. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(PhotoclusterError):
    """Bad arguments or options."""

    exit_code = 2


class PathNotFoundError(UsageError):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(f"{os.fsdecode(path)}: no such file or folder")
        self.path = path


class NotFoundError(UsageError):
    """A person, face or photo the user named does not exist."""


class NameTakenError(UsageError):
    """A name given to a person that another person already has: one person photographed
    twice (merge them), or two people of one name (name both knowingly)."""

    def __init__(self, person_id: int, name: str, holders: list[int]) -> None:
        who = " and ".join(f"person {p}" for p in holders)
        super().__init__(f"{who} {'is' if len(holders) == 1 else 'are'} already named {name!r}")
        self.person_id = person_id
        self.name = name
        self.holders = holders


class DatabaseError(PhotoclusterError):
    """The database cannot be opened, created or written."""


class BusyError(DatabaseError):
    """Another photocluster process holds the database for a long job."""


class ConcurrentChangeError(DatabaseError):
    """Corrections (or another clustering) changed the persons while a result that depends
    on them was being computed, again and again: the result was not written."""


class SchemaVersionError(DatabaseError):
    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"{path}: database schema version {found} is newer than this photocluster "
            f"supports ({supported}); upgrade photocluster to open it"
        )
        self.found = found
        self.supported = supported


class ModelError(PhotoclusterError):
    """A model file or the dlib build is missing or unusable."""


class ImageError(PhotoclusterError):
    """One file could not be used as a photo. Scans record it and go on."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fsdecode(path)}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str | os.PathLike[str], str]]:
        # Crosses the worker-process boundary: rebuild from both arguments, not the message.
        return (type(self), (self.path, self.reason))


class ClusterError(PhotoclusterError):
    """A Dask cluster (``scan --dask``) cannot be reached, has no workers, or failed."""


class ExportError(PhotoclusterError):
    """The export destination cannot be written."""


class ScanInterrupted(PhotoclusterError):
    """Ctrl-C during a scan: the work already done is kept."""

    exit_code = 130
