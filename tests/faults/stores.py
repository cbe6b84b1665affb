"""Shared by the store fault tests: a server started with extra process options, and what it
told the user."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import make_client, recorded_client

RUN = "oropendola.runShellCommand"


def disk_full() -> None:
    """In the server process, before exec: no regular file may grow."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@contextlib.asynccontextmanager
async def server(env: dict[str, str], settings: dict[str, Any], folder: Path,
                 preexec_fn: Callable[[], None] | None = None) -> AsyncIterator[LanguageClient]:
    client = make_client()
    await client.start_io(sys.executable, "-m", "oropendola_ls", env=env, preexec_fn=preexec_fn)
    try:
        capabilities, info = recorded_client("visual-studio-code")
        await client.initialize_session(types.InitializeParams(
            capabilities=capabilities, client_info=info, process_id=os.getpid(),
            root_uri=folder.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
            initialization_options=settings))
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 15)


def warnings_about(client: LanguageClient, path: Path) -> list[str]:
    return [m.message for m in client.messages
            if str(path) in m.message and m.type in (types.MessageType.Warning,
                                                     types.MessageType.Error)]


async def run_shell(client: LanguageClient, command: str, cwd: Path) -> Any:
    return await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=RUN, arguments=[{"command": command, "cwd": str(cwd)}]))


def manifests(cache: Path) -> list[Path]:
    return sorted((cache / "index").rglob("*.json"))
