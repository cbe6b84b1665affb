"""Shared test fixtures: the reference backend as a real process, and LSP clients.

Every end-to-end test drives the real `oropendola-ls` process through pytest-lsp, and that
process talks to a real reference backend over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any, Union

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
        if self.process.stderr is not None and not self.process.stderr.closed:
            with contextlib.suppress(OSError, ValueError):
                record_output(f"backend {self.url} stderr", self.process.stderr.read())

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
    done = subprocess.run(
        [sys.executable, "-m", "oropendola_ls", *args], input=stdin, capture_output=True,
        text=True, timeout=timeout, env=env, check=False,
    )
    # `backend adduser --api-key` prints the new API secret once, on purpose: not a leak.
    if "adduser" not in args:
        record_output(f"cli {args[:2]} stdout", done.stdout)
    record_output(f"cli {args[:2]} stderr", done.stderr)
    return done


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
    watch_issued_secrets(data)
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
    record_incoming(client)
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
        sys.executable, "-m", "oropendola_ls", *scan_log_args(args), *args,
        env=env or server_env(config_dir),
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


# -- suite-wide secret scan -------------------------------------------------------------------
#
# DESIGN: a session id, API secret or token never appears in a log, an error message or a file
# other than the session store. So, for the whole run, per xdist worker:
# - every reference backend started by `start_backend_process` records each secret it issues
#   (SQLite triggers on its own database: session ids, and the SHA-256 of API secrets and of
#   access/refresh tokens, which is all the backend keeps of them); backends started otherwise
#   (in-process, `--embedded`) are covered for the secrets still in their database at the end;
# - every server `lsp_session` starts logs at -vv to a file (`scan_log_args`); every client
#   `make_client` builds records each message the server sends it (notifications —
#   window/showMessage, window/logMessage, $/progress, connection status —, requests, results
#   and error answers); CLI output, backend stderr and each test's captured output are kept;
# - at the end, `secret_scan` looks for every issued secret in every file under the worker's
#   base temporary directory (these records, every test's files: server logs, audit logs,
#   manifests, config/state/cache dirs), except the session stores and the backends' databases,
#   which hold them by design, and fails naming each file and line, never the secret.
# Only secrets a backend issued are looked for: canaries that tests plant on purpose are not.
# OROPENDOLA_TEST_SECRET_SCAN=0 turns it all off (to measure what it costs).

SECRET_SCAN_ENABLED = os.environ.get("OROPENDOLA_TEST_SECRET_SCAN", "1") != "0"
SECRET_SCAN_MAX_FILE = 32 * 1024 * 1024
"""Larger files are not read, nor binary ones (listed in the summary as skipped)."""
_SECRET_STORE_NAMES = re.compile(r"session\.json|\.session\.json\.[0-9a-f]+\.tmp")
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_HEX_RUN = re.compile(rb"[0-9a-f]{32,}")
_LABEL = re.compile(rb"^== (.*)$", re.MULTILINE)
_SECRET_LENGTHS = (32, 56, 64)
"""API secrets (32 hex), session ids (56), access and refresh tokens (64)."""

_ISSUED_SECRETS_SQL = """
CREATE TABLE IF NOT EXISTS _test_issued_secrets (kind TEXT NOT NULL, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS _test_issued_sid AFTER INSERT ON sessions
BEGIN INSERT INTO _test_issued_secrets VALUES ('sid', NEW.sid); END;
CREATE TRIGGER IF NOT EXISTS _test_issued_api_secret_new AFTER INSERT ON users
WHEN NEW.api_secret_hash IS NOT NULL
BEGIN INSERT INTO _test_issued_secrets VALUES ('hash', NEW.api_secret_hash); END;
CREATE TRIGGER IF NOT EXISTS _test_issued_api_secret AFTER UPDATE OF api_secret_hash ON users
WHEN NEW.api_secret_hash IS NOT NULL
BEGIN INSERT INTO _test_issued_secrets VALUES ('hash', NEW.api_secret_hash); END;
CREATE TRIGGER IF NOT EXISTS _test_issued_access AFTER UPDATE OF access_token_hash
ON vscode_auth_requests WHEN NEW.access_token_hash IS NOT NULL
BEGIN INSERT INTO _test_issued_secrets VALUES ('hash', NEW.access_token_hash); END;
CREATE TRIGGER IF NOT EXISTS _test_issued_refresh AFTER UPDATE OF refresh_token_hash
ON vscode_auth_requests WHEN NEW.refresh_token_hash IS NOT NULL
BEGIN INSERT INTO _test_issued_secrets VALUES ('hash', NEW.refresh_token_hash); END;
"""


@attrs.define
class _SecretScan:
    root: Path
    directory: Path
    incoming: IO[str]
    numbers: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))


_scan: _SecretScan | None = None


def watch_issued_secrets(data: Path) -> None:
    """Make the reference backend whose data directory is ``data`` record every secret it
    issues from now on (in its own database, beside the secrets themselves)."""
    database = data / "backend.sqlite3"
    if not SECRET_SCAN_ENABLED or not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        conn.executescript(_ISSUED_SECRETS_SQL)


def scan_log_args(args: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Options that make a server started with ``args`` log at -vv to a file the secret scan
    reads; none when ``args`` already name a log file (it is under the temporary directory)."""
    if _scan is None or "--log-file" in args:
        return ()
    verbose = any(re.fullmatch(r"-v+", arg) for arg in args)
    path = _scan.directory / f"server-{next(_scan.numbers)}.log"
    path.write_text(f"== {_current_test()}\n")  # the server appends to it
    return (*(() if verbose else ("-vv",)), "--log-file", str(path))


def record_output(label: str, text: str | bytes | None) -> None:
    """Keep ``text`` (a process' output) for the secret scan."""
    if _scan is None or not text:
        return
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    with (_scan.directory / "output.txt").open("a", encoding="utf-8") as out:
        out.write(f"== {label}\n{text}\n")


def _current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]


def record_incoming(client: LanguageClient) -> None:
    """Keep every message the server sends ``client`` for the secret scan."""
    if _scan is not None:
        _scan.incoming.write(f"== {_current_test()}\n")
    protocol = client.protocol
    structure = protocol.structure_message

    def recording(data: dict[str, Any]) -> Any:
        if _scan is not None and "jsonrpc" in data:  # the whole message (inner dicts come first)
            with contextlib.suppress(TypeError, ValueError, OSError):
                _scan.incoming.write(json.dumps(data, default=str) + "\n")
        return structure(data)

    protocol.structure_message = recording  # type: ignore[method-assign]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each test's captured output (stdout, stderr, log records, failure text)."""
    if _scan is None:
        return
    for name, content in report.sections:
        if name.endswith(f" {report.when}"):  # each phase's report repeats the earlier ones'
            record_output(f"{report.nodeid} {name}", content)
    if report.failed:
        record_output(f"{report.nodeid} {report.when} failure", report.longreprtext)


@attrs.define
class SecretScanResult:
    findings: list[str]
    issued: int
    files: int
    skipped: list[str]


def _is_sqlite(path: Path) -> bool:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"
    return False


def _issued_digests(database: Path) -> set[str]:
    """SHA-256 (hex) of each secret a reference backend database holds or recorded issuing."""
    digests: set[str] = set()
    queries = (
        ("sid", "SELECT sid FROM sessions"),
        ("hash", "SELECT api_secret_hash FROM users"),
        ("hash", "SELECT access_token_hash FROM vscode_auth_requests"),
        ("hash", "SELECT refresh_token_hash FROM vscode_auth_requests"),
        (None, "SELECT kind, value FROM _test_issued_secrets"),
    )
    try:
        conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return digests
    with contextlib.closing(conn):
        for kind, query in queries:
            try:
                rows = conn.execute(query).fetchall()
            except sqlite3.Error:
                continue
            for row in rows:
                found_kind, value = (kind, row[0]) if kind else (row[0], row[1])
                if not isinstance(value, str) or not value:
                    continue
                if found_kind == "sid":
                    digests.add(hashlib.sha256(value.encode()).hexdigest())
                else:
                    digests.add(value.removeprefix("sha256$"))
    return digests


def scan_for_issued_secrets(root: Path) -> SecretScanResult:
    """Look for every secret issued by a reference backend under ``root`` in every other file
    under ``root``; findings name the file and line, never the secret."""
    databases: list[Path] = []
    texts: list[Path] = []
    skipped: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]  # test repositories' objects (compressed)
        for name in names:
            path = Path(folder, name)
            if _SECRET_STORE_NAMES.fullmatch(name) or name.endswith(_SQLITE_SIDE_FILES):
                continue
            if not path.is_file() or path.is_symlink():
                continue
            if _is_sqlite(path):
                databases.append(path)
            elif path.stat().st_size > SECRET_SCAN_MAX_FILE:
                skipped.append(str(path.relative_to(root)))
            else:
                texts.append(path)
    digests: set[str] = set()
    for database in databases:
        digests |= _issued_digests(database)
    findings: list[str] = []
    if digests:
        for path in texts:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if b"\0" in data[:8192]:  # binary (test fixtures); the server writes text
                skipped.append(str(path.relative_to(root)))
                continue
            seen_lines: set[int] = set()
            for match in _HEX_RUN.finditer(data):
                run = match.group()
                for size in _SECRET_LENGTHS:
                    for start in range(len(run) - size + 1):
                        candidate = run[start:start + size]
                        if hashlib.sha256(candidate).hexdigest() not in digests:
                            continue
                        at = match.start() + start
                        line = data.count(b"\n", 0, at) + 1
                        if line in seen_lines:
                            continue
                        seen_lines.add(line)
                        label = _LABEL.findall(data, 0, at)
                        where = f" (under {label[-1].decode(errors='replace')})" if label else ""
                        findings.append(f"{path.relative_to(root)}:{line}{where}: a {size}-"
                                        "character secret issued by the reference backend")
    return SecretScanResult(findings, len(digests), len(texts), skipped)


@pytest.fixture(scope="session", autouse=True)
def secret_scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fails the run (at the teardown of the worker's last test) when any secret a reference
    backend issued shows up outside the session stores: see the comment above."""
    global _scan
    if not SECRET_SCAN_ENABLED:
        yield
        return
    root = tmp_path_factory.getbasetemp()
    directory = root / "secret-scan"
    directory.mkdir(exist_ok=True)
    incoming = (directory / "lsp-incoming.jsonl").open("a", encoding="utf-8")
    _scan = _SecretScan(root, directory, incoming)
    try:
        yield
    finally:
        _scan = None
        incoming.close()
    started = time.monotonic()
    result = scan_for_issued_secrets(root)
    summary = (f"secret scan of {root}: {result.issued} issued secrets looked for in "
               f"{result.files} files in {time.monotonic() - started:.2f} s; "
               f"{len(result.findings)} findings; {len(result.skipped)} skipped (too large or "
               "binary)")
    (directory / "summary.txt").write_text("\n".join(
        [summary, *result.findings, "skipped:", *result.skipped, ""]))
    if result.findings:
        shown = "\n".join(result.findings[:50])
        pytest.fail(f"Secrets issued by the reference backend leaked ({summary}):\n{shown}",
                    pytrace=False)
