"""The one place that lists every feature module. Each module has ``register(server)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oropendola_ls.server import OropendolaServer


def register_all(server: OropendolaServer) -> None:
    from oropendola_ls.features import account, chat, debug, lifecycle, realtime, shell

    for module in (lifecycle, realtime, account, chat, shell, debug):
        module.register(server)
