"""The JSON-RPC protocol: how ``oropendola/*`` requests reach their handlers.

pygls turns the params of methods it does not know into namedtuples and, for typed envelopes,
drops malformed requests without an answer. Custom methods are therefore read as raw dicts
(`RawRequest`) and checked by each handler (`features.params`), so bad params always get a
-32602 that names the field.

The stdio stream is read here too (`serve`), not by pygls' loop, which goes deaf for good after
one frame with a bad ``Content-Length`` (the next frame's header is swallowed with the junk), reads
a line of any length into memory, and allocates whatever length a header claims. Here:

- a header line that is not ``Content-Length``/``Content-Type`` is skipped, and a
  ``Content-Length: N`` at the end of a line of junk is still found, so framing recovers at the
  next well-formed frame (a JSON body never holds a raw newline, so it cannot fake a header);
- a header line is read at most `MAX_HEADER_LINE` bytes at a time;
- a length above `MAX_MESSAGE_BYTES` is refused without reading (logged) and the stream is
  scanned for the next header; a smaller lie makes the server wait for that many bytes, as any
  reader must (a slow writer looks the same), and what it read then fails to parse (-32700);
- a body that is not JSON gets -32700, a message that is not a JSON-RPC 2.0 request, notification
  or response gets -32600 (id null where there is no usable id); notifications are never answered;
- requests before ``initialize`` get -32002, requests after ``shutdown`` get -32600 (LSP), where
  pygls would leave them unanswered.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, BinaryIO

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)

CUSTOM_PREFIX = "oropendola/"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest message body read; a bigger ``Content-Length`` is refused without reading it."""
MAX_HEADER_LINE = 8192
SHUTDOWN_GRACE = 2.0
"""Seconds ``shutdown`` gives the requests received before it to answer before cancelling."""
_LENGTH_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?\n\Z", re.I)
_NO_ID = object()
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class EditorAnswerError(JsonRpcException):
    """The editor's answer to one of the server's requests does not fit that request."""

    CODE = -32803  # RequestFailed


def _valid_unicode(value: Any) -> Any:
    """``value`` with lone UTF-16 surrogates (legal in JSON escapes, not in Unicode: they break
    every encode, path and write) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_valid_unicode(v) for v in value]
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    return value


@attrs.define
class RawRequest:
    """Envelope for incoming custom requests; only ever received, never sent."""

    id: int | str
    method: str
    jsonrpc: str
    params: Any = None


@attrs.define
class RawNotification:
    method: str
    jsonrpc: str
    params: Any = None


class _Answered:
    """Stands in for a request that was already answered with an error while being read."""


ANSWERED = _Answered()


def _usable_id(data: dict[str, Any]) -> Any:
    """The id to answer an invalid message with: its own if it is a JSON-RPC id, else null."""
    msg_id = data.get("id")
    usable = isinstance(msg_id, int | float | str) and not isinstance(msg_id, bool)
    return msg_id if usable else None


def envelope_problem(data: Any) -> tuple[str, Any] | None:
    """Why ``data`` is not a JSON-RPC 2.0 message the server can take, and the id to answer
    with (`_NO_ID`: do not answer, it is a notification); None when it is fine."""
    if not isinstance(data, dict):
        return "a JSON-RPC message must be an object (batches are not part of LSP)", None
    has_id = "id" in data
    answer_id = _usable_id(data) if has_id else (_NO_ID if "method" in data else None)
    if data.get("jsonrpc") != "2.0":
        return 'the "jsonrpc" member must be "2.0"', answer_id
    if "method" in data:
        if not isinstance(data["method"], str):
            return 'the "method" member must be a string', answer_id
        msg_id = data.get("id")
        if has_id and (not isinstance(msg_id, int | str) or isinstance(msg_id, bool)):
            return 'the "id" member must be an integer or a string', answer_id
        return None
    if has_id and ("result" in data or "error" in data):
        return None  # a response to one of our requests
    return 'a message needs a "method" (request, notification) or a "result" or "error"', (
        answer_id)


class OropendolaProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bound_tasks: dict[int | str, asyncio.Task[Any]] = {}
        self._initialize_seen = False
        self._shutdown_requested = False

    def bind_to_request(self) -> None:
        """Let ``$/cancelRequest`` for the current request cancel the current task.

        pygls runs a ``workspace/executeCommand`` command as a separate task of its built-in
        handler, so cancelling the request alone would leave the command running.
        """
        msg_id, task = self.msg_id, asyncio.current_task()
        if msg_id is None or task is None:
            return
        self._bound_tasks[msg_id] = task
        task.add_done_callback(lambda _: self._bound_tasks.pop(msg_id, None))

    def _handle_cancel_notification(self, msg_id: int | str) -> None:
        task = self._bound_tasks.pop(msg_id, None)
        super()._handle_cancel_notification(msg_id)
        if task is not None:
            task.cancel()

    def get_message_type(self, method: str) -> type[Any] | None:  # type: ignore[override]
        if method.startswith(CUSTOM_PREFIX):
            return RawRequest
        return super().get_message_type(method)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """As pygls', but first giving the requests received before ``shutdown`` up to
        `SHUTDOWN_GRACE` seconds to answer (a client that pipelines them expects answers), and
        cancelling the rest over a copy: each cancelled request's callback removes it from the
        dict pygls iterates, so with requests pending pygls' shutdown failed with "dictionary
        changed size during iteration" (-32603)."""
        current_id = self.msg_id
        yield self._let_pending_finish, (current_id,), None
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    async def _let_pending_finish(self, current_id: Any) -> None:
        me: Any = asyncio.current_task()
        pending = [asyncio.wrap_future(f) if isinstance(f, concurrent.futures.Future) else f
                   for msg_id, f in list(self._request_futures.items())
                   if msg_id != current_id and f is not me and not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)

    def notify(self, method: str, params: Any | None = None) -> None:
        """Send a notification; custom ones (``oropendola/connectionStatus``) go out as is."""
        if not method.startswith(CUSTOM_PREFIX):
            super().notify(method, params)
            return
        self._send_data(RawNotification(method=method, jsonrpc=self.VERSION, params=params))

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Answer a request whose params do not fit its method with -32602.

        pygls reports such a request with a window/showMessage and never answers it, so the
        editor would wait for ever.
        """
        if "id" not in data and str(data.get("method", "")).startswith(CUSTOM_PREFIX):
            return self._converter.structure(data, RawNotification)  # no such notification
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if not ({"jsonrpc", "id", "method"} <= data.keys()) or "result" in data:
                raise
            cause = exc.__cause__
            detail = (
                "; ".join(cattrs.transform_error(cause))
                if isinstance(cause, cattrs.BaseValidationError) else "malformed message"
            )
            error = JsonRpcInvalidParams(f"{data['method']}: invalid params: {detail}")
            self._send_response(data["id"], error=error.to_response_error())
            return ANSWERED

    def _refused(self, method: Any, msg_id: Any, is_request: bool) -> bool:
        """Refuse what LSP's lifecycle does not allow: anything before ``initialize``
        (requests get -32002) or after ``shutdown`` (requests get -32600), but ``exit``."""
        if not isinstance(method, str) or method in ("exit", "initialize"):
            return False
        if not self._initialize_seen:
            error: JsonRpcException = JsonRpcServerNotInitialized(
                f"{method}: the server is not initialized: send initialize first")
        elif self._shutdown:
            error = JsonRpcInvalidRequest(
                f"{method}: the server is shutting down; no request is accepted after shutdown")
        else:
            return False
        if is_request:
            self._send_response(msg_id, error=error.to_response_error())
        return True

    def handle_message(self, message: Any) -> None:
        if message is ANSWERED:
            return
        method = getattr(message, "method", None)
        if method == "initialize":
            self._initialize_seen = True
        elif self._refused(method, getattr(message, "id", None), hasattr(message, "id")):
            return
        if method == "shutdown":
            self._shutdown_requested = True
        elif method == "exit" and self._shutdown_requested and not self._shutdown:
            self._exit_after_shutdown(message)  # sent without waiting for the answer
            return
        super().handle_message(message)

    async def finish(self) -> None:
        """At the end of input: let the requests read so far answer, and a shutdown in progress
        end (with the ``exit`` sent after it), for a bounded time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE + (5.0 if self._shutdown_requested else 0.0)
        while loop.time() < deadline:  # several conditions, no one event to wait on
            if not (any(not f.done() for f in list(self._request_futures.values()))
                    or (self._shutdown_requested and not self._shutdown)):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # a deferred exit checks every 20 ms

    def _exit_after_shutdown(self, message: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE + 5.0

        def check() -> None:
            if self._shutdown or loop.time() > deadline:
                LanguageServerProtocol.handle_message(self, message)
            else:
                loop.call_later(0.02, check)

        check()

    def _refuse(self, msg_id: Any, error: JsonRpcException) -> None:
        """Answer a message that never became a request (id null is allowed here)."""
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id,
                         "error": {"code": error.code, "message": error.message}})

    def handle_body(self, body: bytes) -> None:
        """Take one frame's body: parse, check the envelope, then dispatch as pygls would."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # also invalid UTF-8
            log.warning("message is not JSON (%d bytes): %s", len(body), exc)
            self._refuse(None, JsonRpcParseError(f"Parse error: the message is not JSON: {exc}"))
            return
        if _SURROGATE_ESCAPE.search(body):
            data = _valid_unicode(data)
        problem = envelope_problem(data)
        if problem is not None:
            text, msg_id = problem
            log.warning("invalid JSON-RPC message: %s", text)
            if msg_id is not _NO_ID:
                self._refuse(msg_id, JsonRpcInvalidRequest(f"Invalid request: {text}"))
            return
        if self._refused(data.get("method"), data.get("id"), "id" in data):
            return  # before its params are read: the lifecycle answer comes first
        try:
            message = self.structure_message(data)
        except Exception as exc:
            log.warning("could not read %s: %s", data.get("method", "a response"), exc)
            if "method" in data and "id" in data:
                self._refuse(data["id"], JsonRpcInvalidRequest(
                    f"Invalid request: {data['method']}: malformed message"))
            elif "method" not in data:
                # A malformed answer to one of our requests: fail it rather than wait for ever.
                future = self._request_futures.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_exception(EditorAnswerError(
                        f"the editor's answer does not fit the request: {exc}"))
            return
        try:
            self.handle_message(message)
        except Exception:
            log.exception("could not handle %s", data.get("method", "a response"))
            if "method" in data and "id" in data:
                self._refuse(data["id"], JsonRpcInvalidRequest(
                    f"Invalid request: {data['method']}: could not be handled"))


class StdinLines:
    """The server's stdin, read in chunks of what is available on the thread pool (one hop per
    chunk, not per line), served as lines and exact reads."""

    CHUNK = 1 << 16

    def __init__(self, stdin: BinaryIO, run: Callable[..., Awaitable[bytes]]) -> None:
        self._read = getattr(stdin, "read1", stdin.read)
        self._run = run
        self._buffer = bytearray()
        self._eof = False

    async def _fill(self) -> bool:
        if not self._eof:
            data = await self._run(self._read, self.CHUNK)
            self._buffer += data
            self._eof = not data
        return not self._eof

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readline(self, limit: int) -> bytes:
        """Up to and including the next newline, or ``limit`` bytes, or what is left at EOF."""
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buffer) >= limit or not await self._fill():
                return self._take(limit)

    async def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer at EOF."""
        while len(self._buffer) < n and await self._fill():
            pass
        return self._take(n)


async def serve(stop_event: threading.Event, reader: StdinLines,
                protocol: OropendolaProtocol) -> None:
    """Read LSP frames until EOF (see the module docstring for what is done with bad ones)."""
    length: int | None = None
    carry = b""
    while not stop_event.is_set():
        chunk = await reader.readline(MAX_HEADER_LINE)
        if not chunk:
            break
        line = carry + chunk
        if not line.endswith(b"\n"):
            carry = line[-64:]  # a long line of junk: keep only what a header could span
            continue
        carry = b""
        if line in (b"\r\n", b"\n"):
            if length is None:
                continue  # a blank line with no length before it
            size, length = length, None
            body = await reader.read(size)
            if len(body) < size:
                break  # EOF inside a body
            protocol.handle_body(body)
            await asyncio.sleep(0)  # let what it started run before the next message
            continue
        match = _LENGTH_HEADER.search(line)
        if match is None:
            continue  # Content-Type, or junk before a frame
        value = match[1]
        if not value.isdigit():
            log.warning("ignoring a frame header with a bad Content-Length: %r", value[:40])
            length = None
        elif len(value) > 12 or int(value) > MAX_MESSAGE_BYTES:
            log.warning("refusing a message of %s bytes (the limit is %d); looking for the next"
                        " frame", value[:40].decode(), MAX_MESSAGE_BYTES)
            length = None
        else:
            length = int(value)
    await protocol.finish()
