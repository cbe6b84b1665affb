"""Which local files may leave the machine, and ``oropendola.attachFile`` (upload one).

`local_file` turns a ``file:`` URI into a `LocalFile` (its path, and its path relative to the
workspace folder that holds it) and refuses, before anything is read, a file whose path says it
holds secrets (`secrets.secret_file_kind`: ``.env*``, keys, credentials): such files are never
sent, whoever asks. `read_capped` reads at most `MAX_FILE_BYTES` of a regular file. Analysis
(features/analysis.py) uses both.

``oropendola.attachFile`` ``[{uri, conversationId?}]`` uploads the file's bytes as they are on
disk (no redaction: it may be binary) to ``files.upload`` as multipart form data, with
``conversation_id`` when given, and returns the backend's ``data`` object
(``{document_id, filename, size, status}``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.uris import to_fs_path

from oropendola_ls.backend.errors import BackendError
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

log = logging.getLogger(__name__)

ATTACH_FILE = "oropendola.attachFile"
MAX_FILE_BYTES = 5 * 1024 * 1024
"""Files larger than this are neither analysed nor uploaded."""


@attrs.frozen
class LocalFile:
    uri: str
    path: Path
    relpath: str
    """Relative to the workspace folder holding it (``/``-separated), else the file name."""


@attrs.define
class AttachArgs:
    uri: str
    conversation_id: str | None = None


def refuse(message: str, kind: str) -> NoReturn:
    """Fail the request with ``RequestFailed`` and ``data.kind``, like backend errors do."""
    raise JsonRpcException(
        code=types.LSPErrorCodes.RequestFailed, message=message, data={"kind": kind}
    )


def workspace_folders(ls: OropendolaServer) -> list[Path]:
    workspace = ls.workspace
    paths = [to_fs_path(f.uri) for f in workspace.folders.values()]
    if not paths and workspace.root_path:
        paths = [workspace.root_path]
    return [Path(p) for p in paths if p]


def local_file(ls: OropendolaServer, method: str, uri: str) -> LocalFile:
    """The file behind ``uri``; -32602 for a URI that is not ``file:``, and a ``secret_file``
    refusal for a file that holds secrets (judged by its relative, absolute and real path)."""
    from oropendola_ls.secrets import secret_file_kind
    from oropendola_ls.workspace.indexer import relative_path

    fs_path = to_fs_path(uri) if urlsplit(uri).scheme == "file" else None
    if not fs_path:
        raise JsonRpcInvalidParams(f"{method}: only file: URIs can be read, not {uri!r}")
    path = Path(fs_path)
    inside = [(folder, rel) for folder in workspace_folders(ls)
              if (rel := relative_path(folder, path))]
    relpath = max(inside, key=lambda item: len(str(item[0])))[1] if inside else path.name
    for candidate in (relpath, path.as_posix(), Path(os.path.realpath(path)).as_posix()):
        kind = secret_file_kind(candidate)
        if kind is not None:
            log.info("%s: refused %s: it holds secrets (%s)", method, relpath, kind)
            refuse(f"{relpath} looks like a file that holds secrets ({kind}): Oropendola never "
                   "sends such files to the backend", "secret_file")
    return LocalFile(uri, path, relpath)


def too_large(shown: str, size: int) -> NoReturn:
    refuse(f"{shown} is {size / 2**20:.1f} MiB: files over {MAX_FILE_BYTES // 2**20} MiB are "
           "not sent to Oropendola", "too_large")


def read_capped(path: Path, shown: str) -> bytes:
    """The bytes of the regular file ``path`` (blocking: run it in a thread), refused when it is
    larger than `MAX_FILE_BYTES`, missing, unreadable or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    except FileNotFoundError:
        refuse(f"{shown} does not exist", "not_found")
    except OSError as exc:
        refuse(f"Cannot read {shown}: {exc.strerror or exc}", "unreadable")
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            refuse(f"{shown} is not a regular file", "not_a_file")
        if info.st_size > MAX_FILE_BYTES:
            too_large(shown, info.st_size)
        try:
            data = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            refuse(f"Cannot read {shown}: {exc.strerror or exc}", "unreadable")
    if len(data) > MAX_FILE_BYTES:
        too_large(shown, len(data))
    return data


@backend_errors
async def attach_file(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
    ls.protocol.bind_to_request()
    if len(args) != 1:
        raise JsonRpcInvalidParams(f"{ATTACH_FILE}: expected one argument {{uri, conversationId?}}")
    p = parse_params(ATTACH_FILE, args[0], AttachArgs)
    file = local_file(ls, ATTACH_FILE, p.uri)
    data = await asyncio.to_thread(read_capped, file.path, file.relpath)

    import mimetypes

    from oropendola_ls.backend.client import Upload

    content_type = mimetypes.guess_type(file.path.name)[0] or "application/octet-stream"
    body: dict[str, Any] = {"file": Upload(file.path.name, data, content_type)}
    if p.conversation_id:
        body["conversation_id"] = p.conversation_id
    account = await ls.get_account()
    reply = await account.call("files.upload", body)
    result = reply.get("data", reply) if isinstance(reply, Mapping) else reply
    if not isinstance(result, Mapping):
        raise BackendError("The backend's answer to the upload has no data")
    log.info("attached %s (%d bytes)", file.relpath, len(data))
    return dict(result)


def register(server: OropendolaServer) -> None:
    server.command(ATTACH_FILE)(attach_file)
