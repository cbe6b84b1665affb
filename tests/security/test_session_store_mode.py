"""The session store is private after every kind of sign-in, end to end.

tests/unit/test_session_store.py proves it of `SessionStore` alone (umask 0, directories
created 0700, a loose file repaired); tests/lsp/test_sign_in.py and test_browser_sign_in.py
check the file mode after a password and a browser sign-in under the usual umask. Here the real
server and `login` write it under umask 0 (so only explicit modes count) into a config directory
that does not exist yet, after a password, an API-key and a browser sign-in: the file is 0600,
the directories created for it 0700, and no other file the server leaves in its config, data,
state or cache directories is readable by others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.conftest import BackendProcess, lsp_session, request, run_cli, server_env, wait_until
from tests.sign_in_page import complete_sign_in


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def open_umask() -> Iterator[None]:
    """Umask 0 for the processes started inside (they inherit it)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def assert_private(store: Path, created: Path) -> None:
    assert mode(store) == 0o600, oct(mode(store))
    probe = store.parent
    while True:  # every directory the server created for it
        assert mode(probe) == 0o700, (probe, oct(mode(probe)))
        if probe == created:
            break
        probe = probe.parent


async def test_store_is_private_after_password_api_key_and_browser_sign_in(
        tmp_path: Path, start_backend: Callable[..., BackendProcess]) -> None:
    backend = start_backend(0, "--auth-poll-interval", "0.1")
    email, password, output = backend.add_user(api_key=True)
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    home = tmp_path / "home"
    home.mkdir()
    created = home / "new"
    config_dir = created / "config" / "oropendola-ls"
    store = config_dir / "session.json"
    env = server_env(config_dir)  # data, state and cache beside it, under home/new/config
    with open_umask():
        async with lsp_session("visual-studio-code", config_dir, {"serverUrl": backend.url},
                               env=env, workspace=home) as client:
            await request(client, "oropendola/signIn", {"username": email, "password": password})
            assert_private(store, created)
            await request(client, "oropendola/signOut")
            assert mode(store) == 0o600

            await request(client, "oropendola/signIn",
                          {"apiKey": fields["api_key"], "apiSecret": fields["api_secret"]})
            assert_private(store, created)
            await request(client, "oropendola/signOut")

            pending = asyncio.ensure_future(
                request(client, "oropendola/signIn", {"method": "browser"}))
            await wait_until(lambda: bool(client.shown_documents), 20)
            page = await asyncio.to_thread(complete_sign_in, client.shown_documents[0].uri,
                                           email, password)
            assert page.status_code == 200
            assert (await asyncio.wait_for(pending, 30))["user"] == email
            assert_private(store, created)
            assert (await request(client, "oropendola/status"))["signedIn"] is True

        # `login --api-key` from a terminal, into another new directory.
        cli_created = home / "cli"
        cli_config = cli_created / "oropendola-ls"
        done = run_cli("login", "--server", backend.url, "--api-key", fields["api_key"],
                       stdin=fields["api_secret"] + "\n", env=server_env(cli_config))
        assert done.returncode == 0, done.stderr
        assert_private(cli_config / "session.json", cli_created)

    loose = [f"{path} {oct(mode(path))}" for path in created.rglob("*")
             if path.is_file() and mode(path) & 0o077]
    assert not loose, loose


def test_a_store_left_readable_is_repaired_before_use(tmp_path: Path, backend: BackendProcess
                                                     ) -> None:
    """A store someone made readable (a backup restored, a chmod) is tightened by `status`."""
    email, password, _ = backend.add_user()
    config_dir = tmp_path / "config"
    env = server_env(config_dir)
    done = run_cli("login", "--server", backend.url, "-u", email, "--password-stdin",
                   stdin=password + "\n", env=env)
    assert done.returncode == 0, done.stderr
    store = config_dir / "session.json"
    store.chmod(0o644)
    status = run_cli("status", env={**env, "OROPENDOLA_SERVER_URL": backend.url})
    assert status.returncode == 0, status.stderr
    assert mode(store) == 0o600
    assert "readable by others" in status.stderr
