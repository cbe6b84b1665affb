"""`oropendola-ls login --browser`, run as a user runs it: a real process against a real backend,
with the sign-in page completed over HTTP like a person completes it in a browser."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import BackendProcess, run_cli, server_env
from tests.sign_in_page import complete_sign_in, stored_entry, url_in

API = "oropendola_ai.oropendola_ai.api"


class Login:
    """``oropendola-ls login ARGS`` running; its stdout is collected as it comes."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oropendola_ls", "login", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env,
        )
        self.lines: list[str] = []
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def url(self, timeout: float = 30) -> str:
        """The sign-in page's URL, once the command printed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = url_in(line)
                if found is not None:
                    return found
            if self.process.poll() is not None and not self._pump.is_alive():
                break
            time.sleep(0.02)
        self.process.kill()
        raise AssertionError(f"no sign-in URL on stdout: {''.join(self.lines)!r}")

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """(exit status, all of stdout, all of stderr)."""
        self.process.wait(timeout)
        self._pump.join(10)
        err = self.process.stderr.read() if self.process.stderr else ""
        return self.process.returncode, "".join(self.lines), err


def published_backend(start_backend: Callable[..., BackendProcess], *extra: str
                      ) -> BackendProcess:
    return start_backend(0, "--profile", "oropendola_ai", "--auth-poll-interval", "0.1", *extra)


def test_login_browser_no_open(tmp_path: Path, start_backend: Callable[..., BackendProcess]
                               ) -> None:
    backend = published_backend(start_backend)
    email, password, _ = backend.add_user()
    env = server_env(tmp_path)

    login = Login(env, "--server", backend.url, "--browser", "--no-open")
    url = login.url()
    assert url.startswith(f"{backend.url}vscode-login?auth_request=")
    page = complete_sign_in(url, email, password)
    assert page.status_code == 200 and "/vscode-auth-success" in str(page.url)
    code, out, err = login.finish()
    assert code == 0, err
    assert "Waiting for the sign-in" in out
    assert f"Signed in to {backend.url} as {email} (Test User)." in out

    session_file = tmp_path / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    entry = stored_entry(tmp_path, backend.url)
    tokens = (entry["access_token"], entry["refresh_token"])
    assert all(len(t) == 64 for t in tokens) and entry["user"] == email
    assert not any(t in out + err for t in tokens)

    status = run_cli("status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"{backend.url}: signed in as {email}, session valid" in status.stdout
    assert "plan: Local (Active)" in status.stdout
    report = json.loads(run_cli("status", "--json", env=env).stdout)[0]
    assert report["backend"]["profile"] == "oropendola_ai"
    assert report["backend"]["profileDetected"] is True
    assert report["profile"] == {"email": email, "fullName": "Test User"}
    assert report["subscription"]["status"] == "Active"
    assert not any(t in status.stdout + status.stderr for t in tokens)

    logout = run_cli("logout", "--server", backend.url, env=env)
    assert logout.returncode == 0 and "Signed out" in logout.stdout
    assert backend.url not in json.loads(session_file.read_text())["sessions"]
    refused = httpx.get(f"{backend.url}api/method/{API}.vscode_auth.get_my_profile",
                        headers={"X-Access-Token": tokens[0]}, timeout=30)
    assert refused.status_code == 401  # the token was revoked, not just forgotten


def test_login_browser_expired_and_interrupted(tmp_path: Path,
                                               start_backend: Callable[..., BackendProcess]
                                               ) -> None:
    backend = published_backend(start_backend, "--auth-request-lifetime", "1")
    env = server_env(tmp_path)

    expired = Login(env, "--server", backend.url, "--browser", "--no-open")
    expired.url()
    code, _, err = expired.finish()
    assert code == 1
    assert "expired" in err and "sign in again" in err

    interrupted = Login(env, "--server", backend.url, "--browser", "--no-open")
    interrupted.url()
    interrupted.process.send_signal(signal.SIGINT)
    code, _, _ = interrupted.finish(30)
    assert code == 130
    assert not (tmp_path / "session.json").exists()


def test_login_browser_refuses_password_options(tmp_path: Path) -> None:
    done = run_cli("login", "--server", "http://127.0.0.1:9", "--browser", "-u", "a@b.c",
                   env=server_env(tmp_path))
    assert done.returncode == 2 and "--browser" in done.stderr
