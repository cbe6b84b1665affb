"""TLS verification cannot be turned off, on purpose or by accident.

The reference backend is put behind a small TLS front (a byte pump on 127.0.0.1) that shows a
self-signed certificate made with the `openssl` command. Then:

- there is no setting that turns verification off: the settings editors use for that
  (`strictSSL`, `verifySsl`, `rejectUnauthorized`, ...) are ignored and the sign-in is refused
  with an error that names TLS and the certificate;
- neither do the environment variables people set to weaken TLS in other tools
  (`PYTHONHTTPSVERIFY=0`, `CURL_CA_BUNDLE=`, `REQUESTS_CA_BUNDLE=`), nor `SSL_CERT_FILE` naming a
  file that holds no certificate (that is a clear error naming the variable, not a traceback);
- `SSL_CERT_FILE` naming the certificate itself makes the sign-in work: trusting a CA the user
  configured is verification, not turning it off (OpenSSL, httpx and curl read it the same way);
- `http://` to a host that is not loopback is refused before any connection, by the server and
  by `login`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, lsp_session, request, run_cli, server_env

WEAKENING = {"PYTHONHTTPSVERIFY": "0", "CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "",
             "NODE_TLS_REJECT_UNAUTHORIZED": "0", "HTTPX_SSL_VERIFY": "0"}
"""What people set to turn TLS verification off in Python, curl, requests and node."""
INSECURE_SETTINGS = {"strictSSL": False, "verifySsl": False, "verifySSL": False,
                     "sslVerify": False, "tlsVerify": False, "rejectUnauthorized": False,
                     "insecure": True, "http": {"proxyStrictSSL": False}}


class TlsFront:
    """A TLS server on 127.0.0.1 with a self-signed certificate, forwarding each connection's
    bytes to the reference backend (so HTTP and the realtime websocket both pass)."""

    def __init__(self, cert: Path, key: Path, upstream_port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}/"
        self.refused = 0  # handshakes the client broke off (it did not trust the certificate)
        self.served = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            conn.close()
            return
        self.served += 1
        with tls, socket.create_connection(("127.0.0.1", self.upstream_port), 10) as upstream:
            upstream.settimeout(None)
            tls.settimeout(None)
            back = threading.Thread(target=self._pump, args=(upstream, tls), daemon=True)
            back.start()
            self._pump(tls, upstream)
            back.join(30)

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def front(certificate: tuple[Path, Path], backend: BackendProcess) -> Iterator[TlsFront]:
    proxy = TlsFront(*certificate, backend.port)
    yield proxy
    proxy.close()


def login(url: str, email: str, password: str, env: dict[str, str]
          ) -> subprocess.CompletedProcess[str]:
    return run_cli("login", "--server", url, "-u", email, "--password-stdin",
                   stdin=password + "\n", env=env, timeout=30)


def stored(config_dir: Path) -> dict[str, object]:
    path = config_dir / "session.json"
    return json.loads(path.read_text())["sessions"] if path.exists() else {}


async def test_self_signed_backend_is_refused_whatever_the_settings_and_environment(
        config_dir: Path, backend: BackendProcess, front: TlsFront, tmp_path: Path) -> None:
    email, password, _ = backend.add_user()
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    # The LSP server: every insecure-sounding setting and every weakening variable at once.
    env = server_env(config_dir, **WEAKENING)
    async with lsp_session("visual-studio-code", config_dir,
                           {"serverUrl": front.url, **INSECURE_SETTINGS}, env=env) as client:
        with pytest.raises(JsonRpcException) as refused:
            await request(client, "oropendola/signIn", {"username": email, "password": password})
        message = refused.value.message
        assert "TLS" in message and "certificate" in message.lower(), message
        assert front.url.rstrip("/") in message
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is False and status["backend"]["url"] == front.url
    assert front.refused >= 1 and front.served == 0
    assert stored(config_dir) == {}
    # SSL_CERT_FILE naming a file with no certificate: a clear error, the server stays up.
    env = server_env(config_dir, SSL_CERT_FILE=str(empty))
    async with lsp_session("helix", config_dir, {"serverUrl": front.url}, env=env) as client:
        with pytest.raises(JsonRpcException) as refused:
            await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert f"SSL_CERT_FILE={empty}" in refused.value.message, refused.value.message
        assert "verification stays on" in refused.value.message
        assert (await request(client, "oropendola/status"))["signedIn"] is False

    # `login`, with the weakening variables, then with SSL_CERT_FILE naming an empty file.
    for extra in (WEAKENING, {**WEAKENING, "SSL_CERT_FILE": str(empty)}):
        done = login(front.url, email, password, server_env(config_dir, **extra))
        assert done.returncode != 0, extra
        assert "Traceback" not in done.stderr, (extra, done.stderr[-2000:])
        if "SSL_CERT_FILE" in extra:
            assert "SSL_CERT_FILE" in done.stderr and str(empty) in done.stderr, done.stderr
        else:
            assert "TLS" in done.stderr and "certificate" in done.stderr.lower(), done.stderr
    assert front.served == 0
    assert stored(config_dir) == {}


def test_a_certificate_the_user_trusts_through_ssl_cert_file_is_accepted(
        config_dir: Path, backend: BackendProcess, front: TlsFront,
        certificate: tuple[Path, Path]) -> None:
    email, password, _ = backend.add_user()
    env = server_env(config_dir, SSL_CERT_FILE=str(certificate[0]))
    done = login(front.url, email, password, env)
    assert done.returncode == 0, done.stderr
    assert front.url in stored(config_dir)
    # The stored session is checked with the backend through the same front (the LSP server
    # uses the same client: its refusal is proven above).
    checked = run_cli("status", env={**env, "OROPENDOLA_SERVER_URL": front.url})
    assert "session valid" in checked.stdout, checked.stdout + checked.stderr
    assert front.served >= 2
    # Without the variable the same front is refused again.
    plain = run_cli("status", env=server_env(config_dir, OROPENDOLA_SERVER_URL=front.url))
    assert "TLS" in plain.stdout + plain.stderr, plain.stdout + plain.stderr


async def test_plain_http_to_a_remote_host_is_refused(config_dir: Path) -> None:
    """Covered for `serverUrl` in tests/lsp/test_bad_input.py and for `login --server` in
    tests/cli/test_cli.py; here the other ways a URL gets in: fallbackUrls, the environment
    variable, and the CLI's browser sign-in. Nothing is ever sent (the host does not exist)."""
    remote = "http://oropendola.example.com/"
    env = server_env(config_dir, OROPENDOLA_SERVER_URL=remote)
    async with lsp_session("neovim", config_dir, {"fallbackUrls": [remote]}, env=env) as client:
        status = await request(client, "oropendola/status")
        assert status["backend"]["url"].startswith("https://")
    shown = [m.message for m in client.messages]
    assert any("fallbackUrls" in m and "https://" in m for m in shown), shown
    assert any("OROPENDOLA_SERVER_URL" in m or "serverUrl" in m for m in shown), shown
    done = run_cli("login", "--browser", "--no-open", env=env, timeout=30)
    assert done.returncode != 0
    assert "only allowed for loopback hosts" in done.stderr, done.stderr
