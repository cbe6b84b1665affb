"""The terminal commands, run as a user would: a real process against a real backend."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from oropendola_ls import __version__
from tests.conftest import BackendProcess, run_cli, server_env


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"oropendola-ls {__version__}"


@pytest.mark.parametrize(
    "command",
    [(), ("login",), ("logout",), ("status",), ("backend",), ("backend", "adduser"),
     ("backend", "expire-sessions")],
)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    done = run_cli(*command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: oropendola-ls")


def test_login_status_logout(tmp_path: Path, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    env = server_env(tmp_path)
    server = ["--server", backend.url.rstrip("/")]

    status = run_cli("status", env=env)
    assert status.returncode == 1 and "Not signed in" in status.stdout

    wrong = run_cli("login", *server, "-u", email, "--password-stdin", stdin="bad\n", env=env)
    assert wrong.returncode == 1 and "Wrong email or password" in wrong.stderr
    assert not (tmp_path / "session.json").exists()

    login = run_cli("login", *server, "-u", email, "--password-stdin", stdin=password + "\n",
                    env=env)
    assert login.returncode == 0, login.stderr
    assert f"as {email} (Test User)" in login.stdout
    session_file = tmp_path / "session.json"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    sid = json.loads(session_file.read_text())["sessions"][backend.url]["sid"]
    assert sid not in login.stdout + login.stderr

    status = run_cli("status", env=env)
    assert status.returncode == 0
    assert f"{backend.url}: signed in as {email}, session valid" in status.stdout
    as_json = json.loads(run_cli("status", "--json", env=env).stdout)
    assert as_json[0]["user"] == email and as_json[0]["session"] == "verified"

    backend.cli("expire-sessions", email)
    status = run_cli("status", env=env)
    assert status.returncode == 1 and "expired" in status.stdout

    login = run_cli("login", *server, "-u", email, "--password-stdin", stdin=password + "\n",
                    env=env)
    assert login.returncode == 0
    logout = run_cli("logout", *server, env=env)
    assert logout.returncode == 0 and "Signed out" in logout.stdout
    assert backend.url not in json.loads(session_file.read_text())["sessions"]


def test_login_with_api_key(tmp_path: Path, backend: BackendProcess) -> None:
    email, _, output = backend.add_user(api_key=True)
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    env = server_env(tmp_path)
    done = run_cli("login", "--server", backend.url, "--api-key", fields["api_key"],
                   "--password-stdin", stdin=fields["api_secret"] + "\n", env=env)
    assert done.returncode == 0, done.stderr
    assert email in done.stdout
    assert fields["api_secret"] not in done.stdout + done.stderr


def test_login_refuses_plain_http_to_a_remote_host(tmp_path: Path) -> None:
    done = run_cli("login", "--server", "http://oropendola.example.com", "-u", "a@b.c",
                   "--password-stdin", stdin="pw\n", env=server_env(tmp_path))
    assert done.returncode != 0
    assert "https://" in done.stderr and "loopback" in done.stderr


def test_login_to_a_backend_that_is_down(tmp_path: Path) -> None:
    done = run_cli("login", "--server", "http://127.0.0.1:9", "-u", "a@b.c",
                   "--password-stdin", stdin="pw\n", env=server_env(tmp_path))
    assert done.returncode == 1
    assert "Cannot reach the Oropendola backend" in done.stderr


def test_adduser_twice_is_a_clear_error(backend: BackendProcess) -> None:
    email, _, _ = backend.add_user()
    again = backend.cli("adduser", email, stdin="another password\n")
    assert again.returncode == 2 and email in again.stderr and "exists" in again.stderr


def test_login_that_cannot_be_stored_says_where_and_why(tmp_path: Path,
                                                        backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the config directory should be\n")
    env = server_env(blocker)  # OROPENDOLA_CONFIG_DIR is a regular file
    login = run_cli("login", "--server", backend.url, "-u", email, "--password-stdin",
                    stdin=password + "\n", env=env)
    assert login.returncode == 1
    last = login.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in login.stderr
    assert str(blocker) in last
    assert password not in login.stderr + login.stdout
