"""The language server object: state shared by the features, and the one place they are wired.

Importing this module must stay cheap: the editor waits for ``initialize``. The backend stack
(httpx, the account, the reference backend in embedded mode) is imported after ``initialize``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from oropendola_ls import __version__
from oropendola_ls.ai_progress import ProgressRouter
from oropendola_ls.client_support import ClientSupport
from oropendola_ls.protocol import OropendolaProtocol, StdinLines, serve
from oropendola_ls.settings import SettingProblem, Settings

if TYPE_CHECKING:
    from oropendola_ls.account import Account
    from oropendola_ls.backend.redact import RedactingFilter
    from oropendola_ls.embedded import EmbeddedBackend
    from oropendola_ls.features.realtime import RealtimeFeature
    from oropendola_ls.features.workspace import WorkspaceFeature
    from oropendola_ls.realtime import RealtimeManager

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0


class ServerNotReadyError(Exception):
    pass


class OropendolaServer(LanguageServer):
    protocol: OropendolaProtocol

    def __init__(
        self,
        *,
        embedded: EmbeddedBackend | None = None,
        redactor: RedactingFilter | None = None,
    ) -> None:
        super().__init__(
            "oropendola-ls", __version__, protocol_cls=OropendolaProtocol, max_workers=4
        )
        self.embedded = embedded
        self.redactor = redactor
        self.settings = Settings()
        self.init_options: Any = None
        self.settings_loaded = asyncio.Event()
        """Set once the client's configuration has been read after ``initialized``: what depends
        on a setting from ``workspace/configuration`` (analyzeOnSave) waits for it."""
        self.client_support = ClientSupport()
        """What the editor declared in ``initialize``, and so the paths features take."""
        self.account: Account | None = None
        self._account_ready: asyncio.Future[Account] | None = None
        self._shown_problems: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.progress_router = ProgressRouter()
        """Routes the backend's ``ai_progress`` events to the requests waiting for them."""
        self.realtime: RealtimeManager | None = None
        self.realtime_feature: RealtimeFeature | None = None
        self.workspace_feature: WorkspaceFeature | None = None
        self.ready_hooks: list[Callable[[Account], None]] = []
        """Called once the account is set up and its stored session checked (after
        ``initialized``): what should start then (realtime, indexing) registers here."""
        self.save_listeners: list[Callable[[str], None]] = []
        """Called with the URI of each ``textDocument/didSave`` (features/documents.py)."""
        self.close_listeners: list[Callable[[str], None]] = []
        """Called with the URI of each ``textDocument/didClose`` (features/documents.py)."""
        self.code_action_providers: list[
            Callable[[types.CodeActionParams], list[types.CodeAction]]] = []
        """Each lists its code actions for a ``textDocument/codeAction`` request; the one handler
        (features/code_actions.py) joins them in order. Must be quick: no backend calls."""

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve on stdio, reading frames with `protocol.serve` (robust against bad framing)."""
        from pygls.io_ import StdoutWriter

        self._stop_event = stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

        async def main() -> None:
            loop = asyncio.get_running_loop()
            lines = StdinLines(stdin or sys.stdin.buffer,
                               functools.partial(loop.run_in_executor, self.thread_pool))
            await serve(stop_event, lines, self.protocol)

        try:
            asyncio.run(main())
        except BrokenPipeError:
            log.error("the connection to the editor is lost; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    # -- services ----------------------------------------------------------------------------

    def account_future(self) -> asyncio.Future[Account]:
        if self._account_ready is None:
            self._account_ready = asyncio.get_running_loop().create_future()
        return self._account_ready

    async def get_account(self) -> Account:
        """The account, once ``initialized`` has set it up (requests may arrive before)."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.account_future()), READY_TIMEOUT)
        except TimeoutError as exc:
            raise ServerNotReadyError(
                "oropendola-ls is still starting; try again in a moment"
            ) from exc

    def run_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a reference and logging its failure."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task %s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- telling the user ----------------------------------------------------------------------

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def report_settings_problems(self, problems: list[SettingProblem]) -> None:
        """Show each bad setting once per server run; log unknown keys."""
        for problem in problems:
            text = str(problem)
            if text in self._shown_problems:
                continue
            self._shown_problems.add(text)
            if problem.unknown:
                log.info("%s", text)
            else:
                log.warning("%s", text)
                self.tell(text, types.MessageType.Warning)


def build_server(
    *, embedded: EmbeddedBackend | None = None, redactor: RedactingFilter | None = None
) -> OropendolaServer:
    from oropendola_ls.features import register_all

    server = OropendolaServer(embedded=embedded, redactor=redactor)
    register_all(server)
    return server
