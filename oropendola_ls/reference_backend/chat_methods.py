"""Chat: answers from the backend's chat engine, streamed while they are written, kept as history.

``chat.send_message`` streams the answer to the user's Socket.IO room as ``ai_progress`` events
(thinking, working, the text in deltas, then complete or error) and returns the whole text
(protocol.md §2.4, §3). ``chat.stream`` (the seed's ``GET``, protocol.md §4) answers the same
request as Server-Sent Events instead. Either way the engine is `CallContext.engine`: the offline
engine, or a model (chat_engines/); it stops at once when the caller goes away. A successful
exchange (the prompt and the whole answer) is stored per user and conversation.

The published app's ``agent`` takes the caller from ``api_key`` (an access token of the browser
sign-in, or the user's API key) and adds its routing metadata to the answer
(``selection_reason``, ``task_complexity``, ...). Control action ``agent/fail`` makes every chat
answer the published in-band 429, 500 or 503 instead, until cleared.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from oropendola_ls.reference_backend import security
from oropendola_ls.reference_backend.arguments import current_user, int_arg, maybe_json, text_arg
from oropendola_ls.reference_backend.chat_engines import (
    OFFLINE_MODEL,
    ChatContext,
    ChatRequest,
    ContextError,
    EngineError,
    HistoryEntry,
    IndexLookup,
    parse_context,
    text_deltas,
)
from oropendola_ls.reference_backend.context import CallContext, Handler
from oropendola_ls.reference_backend.event_stream import EventSender, EventStream
from oropendola_ls.reference_backend.vscode_auth import user_for_ai_key

ECHO_MODEL = OFFLINE_MODEL
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 1000
MAX_ID_LENGTH = 200
ENGINE_HISTORY = 20
"""How many earlier messages of the conversation an engine gets."""
GONE_POLL_INTERVAL = 0.05
"""How often, in seconds, an answer being written checks that its caller is still there."""
PROGRESS_EVENT = "ai_progress"
ROUTING_MODES = ("auto", "performance", "efficient", "lite")
"""The published ``agent``'s ``mode`` values (model routing, not the chat mode)."""
__all__ = ["ECHO_MODEL", "chat_stream", "get_history", "make_send_message", "text_deltas"]


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One validated chat request."""

    email: str
    prompt: str
    conversation_id: str
    task_id: str | None
    context: ChatContext


@dataclass(frozen=True, slots=True)
class Answer:
    content: str
    model: str


class AnswerSink(Protocol):
    """Where an answer goes while it is written; each step returns False once the caller left."""

    async def thinking(self) -> bool: ...

    async def working(self) -> bool: ...

    async def text(self, delta: str) -> bool: ...

    async def complete(self, answer: Answer) -> None: ...

    async def error(self, failure: EngineError) -> None: ...


def _chat_call(ctx: CallContext, takes_api_key: bool) -> ChatCall | dict[str, Any]:
    """The request's arguments, or the in-band error (``{"status": 4xx, "error"}``) to answer."""
    email: str | None = None if ctx.is_guest else ctx.user
    if takes_api_key:
        # The real `agent` requires `api_key` (a VS Code access token or AI API key) and
        # ignores the Frappe session. Here an `api_key` is checked against the live access
        # tokens and the users' API keys, and the session user is accepted as well, so
        # cookie-only clients can chat.
        api_key = text_arg(ctx, "api_key")
        if api_key is not None:
            email = user_for_ai_key(ctx.store, api_key)
            if email is None:
                return {"status": 401, "error": "Invalid API key"}
        elif email is None:
            return {"status": 400, "error": "API key is required"}
    assert email is not None  # a Guest cannot reach the session-only flavour
    prompt = text_arg(ctx, "prompt", "message")
    if prompt is None or not prompt.strip():
        return {"status": 400, "error": "Prompt is required"}
    conversation_id = text_arg(ctx, "conversation_id") or security.new_conversation_id()
    if len(conversation_id) > MAX_ID_LENGTH:
        return {"status": 400, "error": "conversation_id is too long"}
    task_id = ctx.form.get("task_id") or None
    if task_id is not None and (not isinstance(task_id, str) or len(task_id) > MAX_ID_LENGTH):
        return {"status": 400,
                "error": f"task_id must be a string of at most {MAX_ID_LENGTH} characters"}
    try:
        context = parse_context(maybe_json(ctx.form.get("context")))
    except ContextError as exc:
        return {"status": 400, "error": str(exc)}
    return ChatCall(email, prompt, conversation_id, task_id, context)


class ProgressSink:
    """``ai_progress`` events to room ``user:<email>``; events carry ``task_id`` only if the
    request did."""

    def __init__(self, ctx: CallContext, call: ChatCall) -> None:
        self._ctx = ctx
        self._email = call.email
        self._conversation_id = call.conversation_id
        self._task: dict[str, Any] = {} if call.task_id is None else {"task_id": call.task_id}

    async def _emit(self, data: dict[str, Any]) -> bool:
        if not self._ctx.client_connected():
            return False
        if self._ctx.realtime is not None:
            await self._ctx.realtime.emit_to_user(self._email, PROGRESS_EVENT, data)
        return True

    async def thinking(self) -> bool:
        return await self._emit({"type": "thinking", "message": "Thinking…", **self._task})

    async def working(self) -> bool:
        return await self._emit({"type": "working", "step": 1, "total": 1,
                                 "message": "Writing the answer", **self._task})

    async def text(self, delta: str) -> bool:
        return await self._emit({"type": "text", "text": delta, "partial": True, **self._task,
                                 "conversation_id": self._conversation_id,
                                 "timestamp": time.time()})

    async def complete(self, answer: Answer) -> None:
        await self._emit({"type": "complete", **self._task,
                          "conversation_id": self._conversation_id})

    async def error(self, failure: EngineError) -> None:
        await self._emit({"type": "error", "message": failure.message, **self._task,
                          "conversation_id": self._conversation_id})


async def _until_gone(ctx: CallContext) -> None:
    """Return once the caller has gone (polled: aiohttp tells no one when a peer leaves)."""
    while True:
        if not ctx.client_connected():
            return
        await asyncio.sleep(GONE_POLL_INTERVAL)


async def produce_answer(ctx: CallContext, call: ChatCall,
                         sink: AnswerSink) -> Answer | EngineError | None:
    """Run the engine on ``call``, passing the steps to ``sink``; None if the caller left.

    The order is thinking, the hold (`ChatPacing`), working, the text deltas (spaced by the
    pacing interval when the engine's streaming is simulated), then complete or error. The
    engine runs beside a watch on the caller: when the caller goes away it is cancelled at
    once, which closes its upstream connection, if any.
    """
    if not await sink.thinking():
        return None
    await ctx.pacing.wait_while_held()
    if not await sink.working():
        return None
    engine = ctx.engine
    history = ctx.store.get_chat_history(call.email, call.conversation_id, ENGINE_HISTORY)
    request = ChatRequest(
        prompt=call.prompt,
        history=tuple(HistoryEntry(m.role, m.content) for m in history),
        context=call.context,
        workspace=IndexLookup(ctx.store.search_index, call.email, call.context.workspace_id),
    )
    pieces: list[str] = []

    async def consume() -> bool:
        deltas = engine.answer(request)
        try:
            async for delta in deltas:
                if not delta:
                    continue
                if engine.paced and pieces:
                    await asyncio.sleep(ctx.pacing.interval)  # sleep(0) still lets the loop run
                pieces.append(delta)
                if not await sink.text(delta):
                    return False
            return True
        finally:
            close = getattr(deltas, "aclose", None)
            if close is not None:
                await close()

    consumer = asyncio.create_task(consume())
    watcher = asyncio.create_task(_until_gone(ctx))
    try:
        await asyncio.wait({consumer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        consumer.cancel()  # a no-op once it is done
        await asyncio.gather(consumer, watcher, return_exceptions=True)
    if consumer.cancelled():
        return None
    failure = consumer.exception()
    if isinstance(failure, EngineError):
        await sink.error(failure)
        return failure
    if failure is not None:
        await sink.error(EngineError("The chat engine failed unexpectedly", 500))
        raise failure
    if not consumer.result():
        return None
    answer = Answer("".join(pieces), engine.model)
    await sink.complete(answer)
    return answer


def _remember(ctx: CallContext, call: ChatCall, answer: Answer) -> None:
    ctx.store.add_chat_message(call.conversation_id, call.email, "user", call.prompt)
    ctx.store.add_chat_message(call.conversation_id, call.email, "assistant", answer.content)


_GONE = {"status": 499, "error": "The caller went away before the answer was complete"}


def task_complexity(prompt: str) -> str:
    """A rough size class of a prompt, standing in for the app's router's judgement."""
    words = len(prompt.split())
    return "simple" if words <= 12 else "moderate" if words <= 80 else "complex"


def _routing(ctx: CallContext, call: ChatCall, answer: Answer,
             started: float) -> dict[str, Any]:
    """The published ``agent``'s metadata beside the answer (protocol.md §2.4)."""
    mode = text_arg(ctx, "mode")
    mode = mode if mode in ROUTING_MODES else "auto"
    complexity = task_complexity(call.prompt)
    return {
        "auto_selected": True,
        "selection_reason": f"Optimized for {complexity} tasks in {mode} mode",
        "task_complexity": complexity,
        "latency_ms": round((time.monotonic() - started) * 1000),
        "cost": 0.0,
        "budget_remaining": -1,
        "full_response": {
            "id": f"chatcmpl-{call.conversation_id}",
            "object": "chat.completion",
            "model": answer.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer.content}}],
        },
    }


def make_send_message(takes_api_key: bool) -> Handler:
    async def send_message(ctx: CallContext) -> object:
        started = time.monotonic()
        call = _chat_call(ctx, takes_api_key)
        if not isinstance(call, ChatCall):
            return call
        failure = ctx.failure.answer()
        if failure is not None:
            return failure
        outcome = await produce_answer(ctx, call, ProgressSink(ctx, call))
        if outcome is None:
            return dict(_GONE)
        if isinstance(outcome, EngineError):
            return {"status": outcome.status, "error": outcome.message}
        _remember(ctx, call, outcome)
        reply = {
            "status": 200,
            "content": outcome.content,
            "model": outcome.model,
            "conversation_id": call.conversation_id,
            "agent_mode": True,
        }
        if takes_api_key:
            reply.update(_routing(ctx, call, outcome, started))
        return reply

    return send_message


async def get_history(ctx: CallContext) -> object:
    email = current_user(ctx).email
    limit = int_arg(ctx, "limit", DEFAULT_HISTORY_LIMIT, 1, MAX_HISTORY_LIMIT)
    conversation_id = text_arg(ctx, "conversation_id") or ctx.store.latest_conversation(email)
    messages = ctx.store.get_chat_history(email, conversation_id, limit) if conversation_id else []
    return {
        "conversation_id": conversation_id,
        "messages": [
            {"role": m.role, "content": m.content, "timestamp": m.timestamp} for m in messages
        ],
    }


class StreamSink:
    """The answer as Server-Sent Events in protocol.md §4's recommended shape.

    Each delta is ``{"ts", "type": "say", "say": "text", "text", "partial": true, "content"}``;
    the close is the whole text with ``partial: false``, ``conversation_id`` and ``model`` and
    no ``content`` (so readers that append ``content`` do not get the text twice), then
    ``[DONE]``. A failure is ``{"ts", "type": "say", "say": "error", "text", "partial": false,
    "status", "error"}``, then ``[DONE]``.
    """

    def __init__(self, ctx: CallContext, call: ChatCall, send: EventSender) -> None:
        self._ctx = ctx
        self._call = call
        self._send = send

    @staticmethod
    def _ts() -> int:
        return time.time_ns() // 1_000_000

    async def thinking(self) -> bool:
        return self._ctx.client_connected()

    async def working(self) -> bool:
        return self._ctx.client_connected()

    async def text(self, delta: str) -> bool:
        return await self._send({"ts": self._ts(), "type": "say", "say": "text", "text": delta,
                                 "partial": True, "content": delta})

    async def complete(self, answer: Answer) -> None:
        if await self._send({"ts": self._ts(), "type": "say", "say": "text",
                             "text": answer.content, "partial": False,
                             "conversation_id": self._call.conversation_id,
                             "model": answer.model}):
            await self._send("[DONE]")

    async def error(self, failure: EngineError) -> None:
        if await self._send({"ts": self._ts(), "type": "say", "say": "error",
                             "text": failure.message, "partial": False,
                             "status": failure.status, "error": failure.message}):
            await self._send("[DONE]")


async def chat_stream(ctx: CallContext) -> object:
    """``chat.stream``: the arguments of ``chat.send_message``, the answer as an event stream.

    A request that is refused before the answer starts gets send_message's in-band JSON error.
    """
    call = _chat_call(ctx, takes_api_key=False)
    if not isinstance(call, ChatCall):
        return call

    async def run(send: EventSender) -> None:
        outcome = await produce_answer(ctx, call, StreamSink(ctx, call, send))
        if isinstance(outcome, Answer):
            _remember(ctx, call, outcome)

    return EventStream(run)
