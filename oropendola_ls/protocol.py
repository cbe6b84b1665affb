"""The JSON-RPC protocol: how ``oropendola/*`` requests reach their handlers.

pygls turns the params of methods it does not know into namedtuples and, for typed envelopes,
drops malformed requests without an answer. Custom methods are therefore read as raw dicts
(`RawRequest`) and checked by each handler (`features.params`), so bad params always get a
-32602 that names the field.
"""

from __future__ import annotations

from typing import Any

import attrs
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


class OropendolaProtocol(LanguageServerProtocol):
    def get_message_type(self, method: str) -> type[Any] | None:  # type: ignore[override]
        if method.startswith(CUSTOM_PREFIX):
            return RawRequest
        return super().get_message_type(method)
