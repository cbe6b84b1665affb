"""Logging: stderr (stdout carries the protocol) or a file, with secrets redacted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oropendola_ls.backend.redact import RedactingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class AnsweredErrorFilter(logging.Filter):
    """Drop pygls' traceback for errors a handler raised on purpose (bad params, backend down).

    The client already got the error and our handlers log it; internal errors still pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from pygls.exceptions import JsonRpcException, JsonRpcInternalError

        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, JsonRpcException) and not isinstance(error, JsonRpcInternalError)
        )


def setup_logging(verbosity: int, log_file: Path | None, redactor: RedactingFilter) -> None:
    """``verbosity`` 0 → WARNING, 1 → INFO, 2+ → DEBUG. pygls stays at WARNING below -vvv:
    at INFO it logs every message body, which may hold the user's code."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(AnsweredErrorFilter())
    for noisy in ("httpx", "httpcore", "aiohttp.access", "engineio", "socketio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
