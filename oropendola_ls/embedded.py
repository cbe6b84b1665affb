"""Embedded mode: the reference backend in a thread of the LSP process, with a local user.

The backend gets its own thread and event loop so that pygls' loop never waits on it, and so
that importing and starting it overlaps with the editor's ``initialize`` handshake.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import threading
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_USER = "local@oropendola.localhost"
LOCAL_FULL_NAME = "Local User"
READY_TIMEOUT = 30.0


class EmbeddedBackend:
    """Runs `reference_backend.start_backend` on a free loopback port until `stop`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._ready: concurrent.futures.Future[tuple[str, str, str]] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-backend", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def wait_ready(self) -> tuple[str, str, str]:
        """``(url, user, password)`` once the backend accepts connections."""
        async with asyncio.timeout(READY_TIMEOUT):
            return await asyncio.wrap_future(self._ready)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # report any start failure to whoever waits
            if not self._ready.done():
                self._ready.set_exception(exc)
            log.exception("embedded backend stopped with an error")

    async def _main(self) -> None:
        from oropendola_ls.reference_backend import start_backend
        from oropendola_ls.reference_backend.chat_engines.openai_compat import LLMConfig

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:  # a model named by OROPENDOLA_LLM_* answers chats, as for `oropendola-ls backend`
            llm = LLMConfig.from_options(base_url=None, model=None, api_key_env=None,
                                         timeout=None, environ=os.environ)
        except ValueError as exc:
            log.warning("ignoring the OROPENDOLA_LLM_* settings: %s; chat uses the offline "
                        "engine", exc)
            llm = None
        backend = await start_backend(data_dir=self.data_dir, host="127.0.0.1", port=0,
                                      llm=llm)
        try:
            password = secrets.token_urlsafe(24)  # fresh each start; never stored
            backend.store.ensure_user(LOCAL_USER, password, LOCAL_FULL_NAME)
            log.info("embedded backend listening on %s (data in %s)", backend.url, self.data_dir)
            self._ready.set_result((backend.url, LOCAL_USER, password))
            await self._stop.wait()
        finally:
            await backend.close()
