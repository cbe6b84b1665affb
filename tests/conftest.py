"""Shared test fixtures: the reference backend as a real process, and LSP clients.

Every end-to-end test drives the real `oropendola-ls` process through pytest-lsp, and that
process talks to a real reference backend over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Union

import attrs
import httpx
import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import LanguageClient
from pytest_lsp.client import register_lsp_features

PRESETS = ("visual-studio-code", "neovim", "emacs", "helix")
"""Editors whose recorded ``initialize`` capabilities the LSP suites replay."""
RECORDED_CLIENTS = (Path(__file__).parent / "capabilities",
                    Path(pytest_lsp.__file__).parent / "clients")
STARTUP_TIMEOUT = 30.0
_user_numbers = itertools.count(1)


# -- reference backend processes ------------------------------------------------------------


@attrs.define
class BackendProcess:
    url: str
    port: int
    data: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run ``oropendola-ls backend ARGS --data <this backend's data>``."""
        return run_cli("backend", *args, "--data", str(self.data), stdin=stdin)

    def control(self, action: str, **body: Any) -> Any:
        """Call the backend's control endpoint (started with ``--control``)."""
        response = httpx.post(f"{self.url}_reference/control/{action}", json=body, timeout=90)
        response.raise_for_status()
        return response.json()

    def add_user(self, password: str = "correct horse battery", api_key: bool = False
                 ) -> tuple[str, str, str]:
        """Create a fresh user; returns (email, password, cli output)."""
        email = f"user{next(_user_numbers)}-{os.getpid()}@example.com"
        extra = ("--api-key",) if api_key else ()
        done = self.cli("adduser", email, "--full-name", "Test User", *extra, stdin=password + "\n")
        assert done.returncode == 0, done.stderr
        return email, password, done.stdout


def run_cli(*args: str, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oropendola_ls", *args], input=stdin, capture_output=True,
        text=True, timeout=timeout, env=env, check=False,
    )


def start_backend_process(data: Path, port: int = 0, *extra: str) -> BackendProcess:
    process = subprocess.Popen(
        [sys.executable, "-m", "oropendola_ls", "backend", "--port", str(port),
         "--data", str(data), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("Listening on http://") or not line:
            break
    if not line.startswith("Listening on http://"):
        process.kill()
        raise RuntimeError(f"backend did not start: {line!r} {process.stderr and process.stderr.read()}")
    address = line.split("Listening on ", 1)[1].strip()
    return BackendProcess(address + "/", int(address.rsplit(":", 1)[1]), data, process)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """One reference backend for the session (both profiles' names, control endpoint on).

    Tests that stop or break its realtime side start their own with `start_backend`."""
    proc = start_backend_process(tmp_path_factory.mktemp("backend"), 0, "--control")
    yield proc
    proc.stop()


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., BackendProcess]]:
    """Start extra backends (on a chosen port, with other options); stopped after the test."""
    started: list[BackendProcess] = []

    def start(port: int = 0, *extra: str, data: Path | None = None) -> BackendProcess:
        proc = start_backend_process(data or tmp_path / f"backend{len(started)}", port, *extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def free_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- LSP clients ------------------------------------------------------------------------------


def recorded_client(preset: str) -> tuple[types.ClientCapabilities, types.ClientInfo | None]:
    """The recorded ``initialize`` of the editor ``preset``: the newest recording of
    ``visual-studio-code``, ``neovim``, ``emacs`` or ``helix``, or an exact one such as
    ``emacs@29.1`` (pytest-lsp's recordings, and ours in tests/capabilities)."""
    name, _, wanted = preset.partition("@")
    stem = name.replace("-", "_")
    found: list[tuple[tuple[int, ...], Path]] = []
    for folder in RECORDED_CLIENTS:
        for path in folder.glob(f"{stem}_v*.json"):
            version = re.fullmatch(rf"{stem}_v([0-9.]+)\.json", path.name)
            if version and wanted in ("", version[1]):
                found.append((tuple(int(n) for n in version[1].split(".")), path))
    if not found:
        raise ValueError(f"no recorded capabilities for {preset!r}")
    data = json.loads(max(found)[1].read_text(encoding="utf-8"))
    converter = default_converter()  # type: ignore[no-untyped-call]
    info = data.get("clientInfo")
    return (converter.structure(data["capabilities"], types.ClientCapabilities),
            converter.structure(info, types.ClientInfo) if info else None)


def client_capabilities(preset: str) -> types.ClientCapabilities:
    return recorded_client(preset)[0]


def _client_converter() -> Any:
    conv = default_converter()  # type: ignore[no-untyped-call]

    def code_action_or_command(obj: Any, _: Any) -> Any:  # lsprotocol 2025.0.0 union bug
        target = types.Command if isinstance(obj.get("command"), str) else types.CodeAction
        return conv.structure(obj, target)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], code_action_or_command)
    return conv


def make_client(*, can_ask: bool = True) -> LanguageClient:
    """A pytest-lsp client; ``can_ask=False`` leaves out window/showMessageRequest, as Helix
    does (the server then gets -32601 when it asks)."""
    client = LanguageClient(converter_factory=_client_converter)
    register_lsp_features(client)
    client.message_requests = []  # type: ignore[attr-defined]
    client.connection_states = []  # type: ignore[attr-defined]
    client.message_answer = None  # type: ignore[attr-defined]  # the button the "user" presses

    if can_ask:
        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def on_message_request(
            params: types.ShowMessageRequestParams,
        ) -> types.MessageActionItem | None:
            client.message_requests.append(params)  # type: ignore[attr-defined]
            answer = client.message_answer  # type: ignore[attr-defined]
            return types.MessageActionItem(title=answer) if answer else None

    @client.feature("oropendola/connectionStatus")
    def on_connection_status(params: Any) -> None:
        status = to_json(params)
        status["at"] = time.monotonic()
        client.connection_states.append(status)  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        return None

    return client


@pytest.fixture(params=PRESETS)
def preset(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.mkdir()
    return path


def server_env(config_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["OROPENDOLA_CONFIG_DIR"] = str(config_dir)
    env["OROPENDOLA_DATA_DIR"] = str(config_dir.parent / "data")
    env["OROPENDOLA_STATE_DIR"] = str(config_dir.parent / "state")
    env["OROPENDOLA_CACHE_DIR"] = str(config_dir.parent / "cache")
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def lsp_session(
    preset: str,
    config_dir: Path,
    settings: dict[str, Any] | None = None,
    *,
    args: tuple[str, ...] = (),
    configuration: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    can_ask: bool | None = None,
    workspace: Path | None = None,
    folders: list[Path] | None = None,
) -> AsyncIterator[LanguageClient]:
    """Start `oropendola-ls`, initialize it with ``settings`` as initializationOptions.

    The client answers ``window/showMessageRequest`` unless ``can_ask`` is false; by default it
    does what the editor does (Helix replies -32601)."""
    if can_ask is None:
        can_ask = not preset.startswith("helix")
    client = make_client(can_ask=can_ask)
    if configuration is not None:
        client.set_configuration(configuration, section="oropendola")
    await client.start_io(
        sys.executable, "-m", "oropendola_ls", *args, env=env or server_env(config_dir)
    )
    try:
        capabilities, client_info = recorded_client(preset)
        client.init_result = await client.initialize_session(  # type: ignore[attr-defined]
            types.InitializeParams(
                capabilities=capabilities,
                client_info=client_info,
                process_id=os.getpid(),
                root_uri=(workspace or config_dir.parent).as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name)
                                   for f in folders] if folders else None,
                initialization_options=settings or {},
            )
        )
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 15)


async def request(client: LanguageClient, method: str, params: Any = None) -> Any:
    """Send a custom request; returns the result converted to plain JSON types."""
    result = await asyncio.wait_for(
        client.protocol.send_request_async(method, params if params is not None else {}), 30
    )
    return to_json(result)


def to_json(value: Any) -> Any:
    """pygls gives custom results as namedtuples; turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: to_json(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)
