"""The client side of workspace indexing: list, filter, read, redact and send a folder's files.

Plain services with no LSP types; the ``oropendola/indexWorkspace`` request and the file-watcher
wiring call `index_folder` and `index_paths` with a ``send`` that posts one batch to the
backend.
"""

from oropendola_ls.workspace.indexer import (
    IndexReport,
    index_folder,
    index_paths,
    relative_path,
)
from oropendola_ls.workspace.languages import language_of
from oropendola_ls.workspace.manifest import Manifest, workspace_id
from oropendola_ls.workspace.scanner import DEFAULT_MAX_FILE_SIZE, ScanResult, scan_folder

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "IndexReport",
    "Manifest",
    "ScanResult",
    "index_folder",
    "index_paths",
    "language_of",
    "relative_path",
    "scan_folder",
    "workspace_id",
]
