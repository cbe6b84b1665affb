"""Chat: the reference backend's answers, streamed as ``ai_progress`` and kept as history.

A chat answer is also streamed to the user's Socket.IO room as ``ai_progress`` events (thinking,
working, the text in deltas, complete) before the HTTP answer is returned (protocol.md §3).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Any

from oropendola_ls.reference_backend import frappe, security
from oropendola_ls.reference_backend.arguments import current_user, int_arg, text_arg
from oropendola_ls.reference_backend.context import CallContext, Handler

ECHO_MODEL = "reference-echo"
DEFAULT_HISTORY_LIMIT = 50
MAX_HISTORY_LIMIT = 1000
MAX_ID_LENGTH = 200
MAX_TEXT_DELTAS = 64
"""A long reply is streamed a few words per delta, so it never takes more than this many waits."""
PROGRESS_EVENT = "ai_progress"
_DELTA_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


def echo_reply(prompt: str) -> str:
    """The reference backend's deterministic answer to a prompt."""
    return (
        "This is the offline Oropendola reference backend: no AI model is connected, "
        f'so it can only echo your prompt. You said: "{prompt}"'
    )


def text_deltas(reply: str, most: int = MAX_TEXT_DELTAS) -> list[str]:
    """``reply`` cut after whitespace, a word (or a few) per piece; the pieces join to ``reply``."""
    words = [word for word in _DELTA_BOUNDARY.split(reply) if word]
    per_delta = max(1, math.ceil(len(words) / most))
    return ["".join(words[i:i + per_delta]) for i in range(0, len(words), per_delta)]


async def stream_answer(
    ctx: CallContext, email: str, reply: str, conversation_id: str, task_id: str | None
) -> None:
    """Send the answer to room ``user:<email>`` as ``ai_progress`` events, paced by ``ctx.pacing``.

    Stops as soon as the caller has gone away. Events carry ``task_id`` only if the request did.
    """
    realtime = ctx.realtime
    if realtime is None:
        return
    task: dict[str, Any] = {} if task_id is None else {"task_id": task_id}

    async def emit(data: dict[str, Any]) -> bool:
        if not ctx.client_connected():
            return False
        await realtime.emit_to_user(email, PROGRESS_EVENT, data)
        return True

    if not await emit({"type": "thinking", "message": "Thinking…", **task}):
        return
    await ctx.pacing.wait_while_held()
    working = {"type": "working", "step": 1, "total": 1, "message": "Writing the answer"}
    if not await emit({**working, **task}):
        return
    for index, delta in enumerate(text_deltas(reply)):
        if index:
            await asyncio.sleep(ctx.pacing.interval)  # sleep(0) still lets the loop run
        text = {"type": "text", "text": delta, "partial": True, **task,
                "conversation_id": conversation_id, "timestamp": time.time()}
        if not await emit(text):
            return
    await emit({"type": "complete", **task, "conversation_id": conversation_id})


def make_send_message(takes_api_key: bool) -> Handler:
    async def send_message(ctx: CallContext) -> object:
        email: str | None = None if ctx.is_guest else ctx.user
        if takes_api_key:
            # The real `agent` requires `api_key` (a VS Code access token or AI API key) and
            # ignores the Frappe session. Here an `api_key` is checked against the users' API
            # keys, and the session user is accepted as well, so cookie-only clients can chat.
            api_key = text_arg(ctx, "api_key")
            if api_key is not None:
                email = ctx.store.user_for_api_key(api_key)
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
        reply = echo_reply(prompt)
        ctx.store.add_chat_message(conversation_id, email, "user", prompt)
        ctx.store.add_chat_message(conversation_id, email, "assistant", reply)
        await stream_answer(ctx, email, reply, conversation_id, task_id)
        return {
            "status": 200,
            "content": reply,
            "model": ECHO_MODEL,
            "conversation_id": conversation_id,
            "agent_mode": True,
        }

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


async def chat_stream(ctx: CallContext) -> object:
    raise frappe.NotImplementedByBackend(
        "chat.stream is not implemented by the reference backend yet"
    )
