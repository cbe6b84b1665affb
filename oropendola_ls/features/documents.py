"""``textDocument/didSave`` and ``textDocument/didClose``, fanned out to the features that care.

pygls allows one handler per notification, and several features react to a save (analysis,
re-indexing): each appends a callable to ``server.save_listeners`` (or ``close_listeners``) and
is called with the document's URI. Listeners must return quickly (start a task for real work);
one that raises is logged and does not stop the others. pygls itself keeps the open documents'
text (didOpen/didChange/didClose) before these run.

Registering didSave makes pygls advertise ``textDocumentSync.save``, so clients send it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from lsprotocol import types

from oropendola_ls.server import OropendolaServer

log = logging.getLogger(__name__)


def register(server: OropendolaServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)


def did_save(ls: OropendolaServer, params: types.DidSaveTextDocumentParams) -> None:
    _notify(ls.save_listeners, params.text_document.uri, "save")


def did_close(ls: OropendolaServer, params: types.DidCloseTextDocumentParams) -> None:
    _notify(ls.close_listeners, params.text_document.uri, "close")


def _notify(listeners: list[Callable[[str], None]], uri: str, what: str) -> None:
    for listener in list(listeners):
        try:
            listener(uri)
        except Exception:
            log.exception("%s listener %r failed for %s", what, listener, uri)
