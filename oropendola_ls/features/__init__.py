"""The one place that lists every feature module. Each module has ``register(server)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oropendola_ls.server import OropendolaServer


def register_all(server: OropendolaServer) -> None:
    from oropendola_ls.features import (
        account,
        analysis,
        chat,
        chat_document,
        code_actions,
        debug,
        documents,
        files,
        lifecycle,
        realtime,
        shell,
        workspace,
    )

    for module in (lifecycle, realtime, account, chat, documents, workspace, analysis, files,
                   shell, chat_document, code_actions, debug):
        module.register(server)
