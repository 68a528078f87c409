"""Store: the embedded SQLite database, and every SQL statement photocluster runs.

One connection/transaction object (:mod:`photocluster.store.connection`) with numbered
migrations (:mod:`photocluster.store.migrations`), and one module per table family:
:mod:`~photocluster.store.photos`, :mod:`~photocluster.store.faces`,
:mod:`~photocluster.store.persons`, :mod:`~photocluster.store.corrections`,
:mod:`~photocluster.store.births`, :mod:`~photocluster.store.curation`,
:mod:`~photocluster.store.tags`, :mod:`~photocluster.store.thumbs`,
:mod:`~photocluster.store.search` (the kept neighbour-search lists), and the paged reads of the review pages,
:mod:`~photocluster.store.views`. Imports only
``core``; nothing outside this package imports ``sqlite3``.
"""

from photocluster.store.births import Births
from photocluster.store.connection import as_database_error, path_from_key, path_key
from photocluster.store.corrections import Corrections
from photocluster.store.curation import Curation
from photocluster.store.faces import Faces, StoredFace
from photocluster.store.persons import Persons
from photocluster.store.photos import Photos
from photocluster.store.search import SearchLists
from photocluster.store.tags import Tags
from photocluster.store.thumbs import Thumbs
from photocluster.store.views import FaceRow, PersonRow, Views


class Store(Photos, Faces, Persons, Corrections, Births, Curation, Tags, Thumbs, Views, SearchLists):
    """A photocluster database. Use as a context manager, or call :meth:`close`.

    Each base holds the statements of one table family; all of them share the one
    connection that :class:`~photocluster.store.connection.Database` opens.
    """


__all__ = ["FaceRow", "PersonRow", "Store", "StoredFace", "as_database_error", "path_from_key", "path_key"]
