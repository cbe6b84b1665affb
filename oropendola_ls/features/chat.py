"""``oropendola/chat`` and ``oropendola/history``: a message to the backend, streamed as progress.

Each chat gets a fresh ``task_id``; the backend's ``ai_progress`` events for it arrive over the
realtime channel and are reported on the request's ``workDoneToken`` (or on a token the server
creates when the client allows it). The HTTP answer is the source of truth for the final text,
so a chat is complete even if the realtime channel dropped mid-answer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from pygls.exceptions import JsonRpcInvalidParams

from oropendola_ls.ai_progress import interpret
from oropendola_ls.backend.errors import BackendError
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

from .progress import WorkDone

log = logging.getLogger(__name__)

CHAT = "oropendola/chat"
HISTORY = "oropendola/history"

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

    def __init__(self, progress: WorkDone) -> None:
        self.progress = progress
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
            self.progress.report(step.message or None, step.percentage)
        else:
            if step.kind == "error":
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
            self.progress.report(text)


def answer_of(reply: Any) -> tuple[str, str | None]:
    """The answer text and conversation id of a ``chat.send_message`` reply (both profiles)."""
    data = reply.get("message", reply) if isinstance(reply, Mapping) and isinstance(
        reply.get("message"), Mapping) else reply
    if not isinstance(data, Mapping):
        if isinstance(data, str):
            return data, None
        raise BackendError("The backend's chat answer has no text")
    status = data.get("status")
    if (isinstance(status, int) and status >= 400) or data.get("error"):
        detail = data.get("message") if isinstance(data.get("message"), str) else None
        error = data.get("error") or "chat failed"
        raise BackendError(f"The backend refused the chat: {error}"
                           + (f" ({detail})" if detail and detail != error else ""), status=status
                           if isinstance(status, int) else None)
    for key in ("content", "text", "response"):
        value = data.get(key)
        if isinstance(value, Mapping):
            value = value.get("content") or value.get("text")
        if isinstance(value, str):
            conversation = data.get("conversation_id")
            return value, conversation if isinstance(conversation, str) else None
    raise BackendError("The backend's chat answer has no text")


@backend_errors
async def chat(ls: OropendolaServer, params: Any) -> dict[str, Any]:
    p = parse_params(CHAT, params, ChatParams)
    if not p.message.strip():
        raise JsonRpcInvalidParams(f"{CHAT}: 'message' must not be empty")
    if len(p.message) > MAX_MESSAGE_CHARS:
        raise JsonRpcInvalidParams(
            f"{CHAT}: 'message' is {len(p.message):,} characters; the limit is "
            f"{MAX_MESSAGE_CHARS:,}")
    account = await ls.get_account()
    task_id = f"lsp-{uuid.uuid4().hex}"
    text_key = "prompt" if account.config.profile == "oropendola_ai" else "message"
    body: dict[str, Any] = {text_key: p.message, "task_id": task_id}
    if p.conversation_id:
        body["conversation_id"] = p.conversation_id
    progress = WorkDone(ls, "Oropendola", token=p.work_done_token, message="Thinking…")
    stream = ChatStream(progress)
    route = ls.progress_router.open(task_id, stream.deliver, p.conversation_id)
    outcome = "Cancelled"
    try:
        content, conversation_id = answer_of(await account.call("chat.send_message", body))
        if ls.realtime is not None and ls.realtime.state == "connected":
            try:
                await asyncio.wait_for(stream.finished.wait(), COMPLETE_GRACE)
            except TimeoutError:
                log.debug("chat %s: answered before its stream ended", task_id)
        outcome = "Done"
    except BackendError as exc:
        outcome = f"Failed: {exc.message}"
        raise
    finally:
        route.close()
        stream.flush()
        progress.end(outcome)
        await progress.ready()
    log.info("chat %s: %d streamed deltas, %d characters answered", task_id, stream.deltas,
             len(content))
    return {"conversationId": conversation_id or p.conversation_id, "content": content}


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

