"""Store: the embedded SQLite database, and every SQL statement photocluster runs.

One connection/transaction object (:mod:`photocluster.store.connection`) with numbered
migrations, and one module per table family. Imports only ``core``; nothing outside this
package imports ``sqlite3``.
"""

from photocluster.store.database import Store, StoredFace, path_from_key, path_key

__all__ = ["Store", "StoredFace", "path_from_key", "path_key"]
