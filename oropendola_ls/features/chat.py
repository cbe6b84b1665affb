"""``oropendola/chat`` and ``oropendola/history``: a message to the backend, streamed as progress.

Each chat gets a fresh ``task_id``; the backend's ``ai_progress`` events for it arrive over the
realtime channel and are reported on the request's ``workDoneToken`` (or on a token the server
creates when the client allows it). The HTTP answer is the source of truth for the final text,
so a chat is complete even if the realtime channel dropped mid-answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import default_converter
from pygls.workspace import TextDocument

from oropendola_ls import paths
from oropendola_ls.ai_progress import interpret
from oropendola_ls.backend.envelope import in_band_failure
from oropendola_ls.backend.errors import (
    BackendError,
    EndpointUnsupportedError,
    NotSignedInError,
    SignInAgainError,
    in_band_error,
)
from oropendola_ls.chat_context import Context, DocumentView, Finding, Position, build_context
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

from .progress import WorkDone
from .workspace import uri_to_path

if TYPE_CHECKING:
    from oropendola_ls.account import Account

log = logging.getLogger(__name__)

CHAT = "oropendola/chat"
HISTORY = "oropendola/history"
CMD_PREVIEW_CONTEXT = "oropendola.previewContext"
CONVERTER = default_converter()  # type: ignore[no-untyped-call]

COMPLETE_GRACE = 0.5
"""Seconds to wait, after the HTTP answer, for the stream's own end while the socket is up."""
MAX_MESSAGE_CHARS = 100_000
REPORTS_PER_SECOND = 1000.0
REPORT_BURST = 50.0
"""Text deltas beyond this rate (after a burst of this many) are joined into fewer reports."""


@attrs.define
class ChatParams:
    message: str
    conversation_id: str | None = None
    text_document: dict[str, Any] | None = None
    range: dict[str, Any] | None = None
    work_done_token: int | str | None = None


@attrs.define
class HistoryParams:
    conversation_id: str | None = None
    limit: int | None = None


class ReportBudget:
    """A token bucket: how many progress reports a stream may send now."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.updated = 0.0

    def take(self, now: float) -> float:
        """Spend one report if one is available (returns 0), else return the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class ChatStream:
    """The progress of one chat: reports from ``ai_progress`` until the stream's end.

    Text deltas are coalesced, never dropped: each is reported at once while the stream stays
    under `REPORTS_PER_SECOND`; beyond that, deltas wait for the next report and go out joined,
    in order. A burst of thousands of events per second so reaches the editor as at most
    `REPORTS_PER_SECOND` reports, and ordinary streaming is not delayed at all.
    """

    def __init__(self, progress: WorkDone | None,
                 on_text: Callable[[str], None] | None = None) -> None:
        self.progress = progress
        self.on_text = on_text
        self.finished = asyncio.Event()
        self.deltas = 0
        self._pending: list[str] = []
        self._budget = ReportBudget(REPORTS_PER_SECOND, REPORT_BURST)

    def deliver(self, data: Mapping[str, Any]) -> None:
        step = interpret(data)
        if step is None or self.finished.is_set():
            return
        if step.kind == "text":
            self.deltas += 1
            self._pending.append(step.message)
            if len(self._pending) == 1:
                self._send_when_allowed()
            return
        self.flush()
        if step.kind == "report":
            if self.progress is not None:
                self.progress.report(step.message or None, step.percentage)
        else:
            if step.kind == "error" and self.progress is not None:
                self.progress.report(f"Error: {step.message}")
            self.finished.set()

    def _send_when_allowed(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self._budget.take(loop.time())
        if wait:
            loop.call_later(wait, self._send_when_allowed)
        else:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            text, self._pending = "".join(self._pending), []
            if self.progress is not None:
                self.progress.report(text)
            if self.on_text is not None:
                try:
                    self.on_text(text)
                except Exception:
                    log.exception("a chat stream listener failed")


def answer_of(reply: Any) -> tuple[str, str | None]:
    """The answer text and conversation id of a ``chat.send_message`` reply (both profiles).

    The published agent's reply (protocol.md §2.4) is ``{status, content, model,
    selection_reason, ...}``; the model and the reason it was chosen are logged. An in-band
    failure maps as the client maps it: 401 → sign in again, 429 → the quota or budget message
    the backend gave, 503 → no models available, other ≥ 400 → the backend's error text.
    """
    data = reply.get("message", reply) if isinstance(reply, Mapping) and isinstance(
        reply.get("message"), Mapping) else reply
    if not isinstance(data, Mapping):
        if isinstance(data, str):
            return data, None
        raise BackendError("The backend's chat answer has no text")
    failure = in_band_failure(data)
    if failure is not None:
        status, text = failure
        error = in_band_error(status, text, what="the chat", where="the backend",
                              budget=data.get("budget_remaining"))
        if isinstance(error, NotSignedInError):
            raise SignInAgainError(text, status=status)
        raise error
    model, reason = data.get("model"), data.get("selection_reason")
    if isinstance(model, str) and model:
        log.info("chat answered by model %s%s", model,
                 f" ({reason})" if isinstance(reason, str) and reason else "")
    for key in ("content", "text", "response"):
        value = data.get(key)
        if isinstance(value, Mapping):
            value = value.get("content") or value.get("text")
        if isinstance(value, str):
            conversation = data.get("conversation_id")
            return value, conversation if isinstance(conversation, str) else None
    raise BackendError("The backend's chat answer has no text")


@attrs.frozen
class ChatAnswer:
    content: str
    conversation_id: str | None


async def ask(
    ls: OropendolaServer,
    *,
    message: str,
    context: dict[str, Any] | None = None,
    conversation_id: str | None = None,
    progress: WorkDone | None = None,
    on_text: Callable[[str], None] | None = None,
) -> ChatAnswer:
    """Send one chat message and stream its answer; the returned content is the full answer.

    Text deltas reach ``on_text`` and ``progress`` in order, coalesced, never dropped. The
    HTTP answer is the source of truth: complete even if the realtime stream broke off.
    Cancelling the calling task cancels the request; so does the client cancelling
    ``progress`` (``window/workDoneProgress/cancel``). Raises `BackendError`.
    """
    account = await ls.get_account()
    task_id = f"lsp-{uuid.uuid4().hex}"
    published = account.config.profile == "oropendola_ai"
    body: dict[str, Any] = {"prompt" if published else "message": message, "task_id": task_id}
    if conversation_id or published:  # the agent's body always names it (null: a new one)
        body["conversation_id"] = conversation_id or None
    if context or published:
        body["context"] = context or {}
    # The agent also takes `api_key`: the backend client adds the access token there when one
    # is held (a session-only user sends none), so a refreshed token is sent on a retry.
    stream = ChatStream(progress, on_text)
    route = ls.progress_router.open(task_id, stream.deliver, conversation_id)
    unwatch = progress.on_cancel(asyncio.current_task()) if progress is not None else None
    transport = "Socket.IO ai_progress"
    try:
        answered: tuple[str, str | None] | None = None
        if _wants_sse(ls, account):
            try:
                answered = await _ask_over_sse(account, body, stream)
                transport = "Server-Sent Events (chat.stream)"
            except EndpointUnsupportedError as exc:
                log.info("chat.stream unavailable (%s); using chat.send_message", exc.message)
        if answered is None:
            answered = answer_of(await account.call("chat.send_message", body))
            if ls.realtime is not None and ls.realtime.state == "connected":
                try:
                    await asyncio.wait_for(stream.finished.wait(), COMPLETE_GRACE)
                except TimeoutError:
                    log.debug("chat %s: answered before its stream ended", task_id)
        content, answered_id = answered
    finally:
        route.close()
        stream.flush()
        if unwatch is not None:
            unwatch()
    log.info("chat %s: streamed over %s, %d deltas, %d characters answered", task_id,
             transport, stream.deltas, len(content))
    return ChatAnswer(content, answered_id or conversation_id)


def _wants_sse(ls: OropendolaServer, account: Account) -> bool:
    """``chatTransport``: ``sse`` or ``realtime``; ``auto`` takes SSE where the backend has it."""
    choice = ls.settings.chat_transport
    if choice == "auto":
        return account.config.endpoint("chat.stream") is not None
    return choice == "sse"


async def _ask_over_sse(account: Account, body: dict[str, Any], stream: ChatStream
                        ) -> tuple[str, str | None]:
    """The answer from ``chat.stream`` events (protocol.md §4): deltas, then the full text."""
    final: Mapping[str, Any] | None = None
    async for event in account.stream("chat.stream", body):
        if not isinstance(event, Mapping):
            continue
        if event.get("type") == "envelope":  # the backend answered with JSON after all
            return answer_of(event.get("message"))
        if event.get("say") == "error" or event.get("type") == "error":
            error = event.get("error") or event.get("text") or "the chat failed"
            status = event.get("status")
            raise BackendError(f"The backend refused the chat: {error}",
                               status=status if isinstance(status, int) else None)
        if event.get("partial") is False:
            final = event
        else:
            delta = event.get("content") if isinstance(event.get("content"), str) \
                else event.get("text")
            if isinstance(delta, str) and delta:
                stream.deliver({"type": "text", "text": delta})
    if final is None or not isinstance(final.get("text"), str):
        raise BackendError("The backend's chat stream ended without the answer")
    conversation = final.get("conversation_id")
    return final["text"], conversation if isinstance(conversation, str) else None


def context_for(
    ls: OropendolaServer,
    uri: str,
    range: types.Range | None = None,
    *,
    action: str | None = None,
    diagnostics: Sequence[types.Diagnostic] = (),
) -> dict[str, Any]:
    """The context sent with a chat about the document at ``uri``: secret-safe, size-capped."""
    return _context(ls, uri, range, action=action, diagnostics=diagnostics).body


def _context(
    ls: OropendolaServer,
    uri: str | None,
    range: types.Range | None = None,
    *,
    action: str | None = None,
    diagnostics: Sequence[types.Diagnostic] = (),
) -> Context:
    from oropendola_ls.workspace.manifest import workspace_id

    feature = ls.workspace_feature
    folders = feature.folders() if feature is not None else []
    folder = folders[0] if folders else None
    view: DocumentView | None = None
    if uri is not None:
        document = ls.workspace.get_text_document(uri)
        try:
            text = document.source
        except OSError:
            text = ""
        path = uri_to_path(uri)
        folder = (feature.folder_of(path) if feature is not None and path is not None
                  else None) or folder
        relative = (path.relative_to(folder).as_posix() if path is not None and folder is not None
                    and folder in path.parents else (path.name if path is not None else uri))
        view = DocumentView(
            text=text, relative_path=relative, language=document.language_id,
            path=str(path) if path is not None else None,
            selection=_server_range(document, range), cursor=_server_position(
                document, range.start) if range is not None else None)
    findings = [
        Finding(d.message, d.range.start.line + 1, d.range.end.line + 1,
                str(d.code) if d.code is not None else None)
        for d in diagnostics
    ]
    return build_context(
        view, workspace=folder.name if folder is not None else None,
        workspace_id=workspace_id(folder) if folder is not None else None,
        action=action, findings=findings)


def _server_position(document: TextDocument, position: types.Position) -> Position:
    converted = document.position_codec.position_from_client_units(document.lines, position)
    return Position(converted.line, converted.character)


def _server_range(document: TextDocument, range: types.Range | None
                  ) -> tuple[Position, Position] | None:
    if range is None:
        return None
    return _server_position(document, range.start), _server_position(document, range.end)


@backend_errors
async def chat(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    p = parse_params(CHAT, params, ChatParams)
    if not p.message.strip():
        raise JsonRpcInvalidParams(f"{CHAT}: 'message' must not be empty")
    if len(p.message) > MAX_MESSAGE_CHARS:
        raise JsonRpcInvalidParams(
            f"{CHAT}: 'message' is {len(p.message):,} characters; the limit is "
            f"{MAX_MESSAGE_CHARS:,}")
    uri = _document_uri(p.text_document)
    selection = _range(p.range)
    context = _context(ls, uri, selection) if uri is not None else _context(ls, None)
    progress = WorkDone(ls, "Oropendola", token=p.work_done_token, cancellable=True,
                        message="Thinking…")
    outcome = "Cancelled"
    try:
        answer = await ask(ls, message=p.message, context=context.body or None,
                           conversation_id=p.conversation_id, progress=progress)
        outcome = "Done"
    except BackendError as exc:
        outcome = f"Failed: {exc.message}"
        raise
    finally:
        progress.end(outcome)
        await progress.ready()
    return {"conversationId": answer.conversation_id, "content": answer.content}


def _document_uri(value: Any) -> str | None:
    if value is None:
        return None
    uri = value.get("uri") if isinstance(value, Mapping) else None
    if not isinstance(uri, str) or not uri:
        raise JsonRpcInvalidParams(f"{CHAT}: 'textDocument' must be {{uri: string}}")
    return uri


def _range(value: Any) -> types.Range | None:
    if value is None:
        return None
    try:
        result: types.Range = CONVERTER.structure(value, types.Range)
    except Exception as exc:
        raise JsonRpcInvalidParams(
            f"{CHAT}: 'range' must be {{start: {{line, character}}, end: {{line, character}}}}"
        ) from exc
    return result


async def preview_context(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
    """Show, read-only, exactly the context the next chat about a document would send."""
    options = args[0] if args and isinstance(args[0], Mapping) else {}
    uri = options.get("uri") if isinstance(options.get("uri"), str) else None
    selection = _range(options.get("range"))
    context = _context(ls, uri, selection, action=options.get("action")
                       if isinstance(options.get("action"), str) else None)
    text = json.dumps({"context": context.body}, indent=2, ensure_ascii=False)
    note = {"redactions": dict(context.redactions), **(
        {"withheld": context.withheld} if context.withheld else {})}
    target = paths.state_dir() / "previews" / f"context-{int(time.time() * 1000)}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n", encoding="utf-8")
    target.chmod(0o400)  # read-only: what is shown is what would be sent
    shown = False
    if ls.client_support.show_document:
        result = await ls.window_show_document_async(types.ShowDocumentParams(
            uri=target.as_uri(), take_focus=True))
        shown = bool(result and result.success)
    return {"uri": target.as_uri(), "shown": shown, "context": context.body, **note}


@backend_errors
async def history(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    p = parse_params(HISTORY, params, HistoryParams)
    if p.limit is not None and not 1 <= p.limit <= 1000:
        raise JsonRpcInvalidParams(f"{HISTORY}: 'limit' must be between 1 and 1000")
    body: dict[str, Any] = {}
    if p.conversation_id:
        body["conversation_id"] = p.conversation_id
    if p.limit is not None:
        body["limit"] = p.limit
    reply = await (await ls.get_account()).call("chat.get_history", body)
    messages = reply.get("messages") if isinstance(reply, Mapping) else None
    if not isinstance(messages, list):
        raise BackendError("The backend's history answer has no messages")
    result: dict[str, Any] = {"messages": [
        {"role": m.get("role"), "content": m.get("content"), "timestamp": m.get("timestamp")}
        for m in messages if isinstance(m, Mapping)
    ]}
    conversation = reply.get("conversation_id") if isinstance(reply, Mapping) else None
    if isinstance(conversation, str):
        result["conversationId"] = conversation
    return result


def register(server: OropendolaServer) -> None:
    server.feature(CHAT)(chat)
    server.feature(HISTORY)(history)
    server.command(CMD_PREVIEW_CONTEXT)(preview_context)

