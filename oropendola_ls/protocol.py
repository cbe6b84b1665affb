"""The JSON-RPC protocol: how ``oropendola/*`` requests reach their handlers.

pygls turns the params of methods it does not know into namedtuples and, for typed envelopes,
drops malformed requests without an answer. Custom methods are therefore read as raw dicts
(`RawRequest`) and checked by each handler (`features.params`), so bad params always get a
-32602 that names the field.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import cattrs
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol

CUSTOM_PREFIX = "oropendola/"


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


class OropendolaProtocol(LanguageServerProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bound_tasks: dict[int | str, asyncio.Task[Any]] = {}

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

    def handle_message(self, message: Any) -> None:
        if message is not ANSWERED:
            super().handle_message(message)
