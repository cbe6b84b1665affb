"""Fixtures for the tests that drive real editors (Neovim, Emacs, Helix, VS Code's protocol
stack) with the configurations shipped in ``client-configs/``.

Each editor starts ``oropendola-ls`` the way the shipped configuration says, from ``PATH``, in an
environment a user would have after ``oropendola-ls login``: the session is stored in the
config directory and ``OROPENDOLA_SERVER_URL`` names the reference backend. Editors come from
``.ci/install-editors`` (``.editors/``) or the machine; a missing one skips its test with the
reason the installer recorded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from tests.conftest import BackendProcess, run_cli, server_env

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CONFIGS = ROOT / "client-configs"
EDITORS = ROOT / ".editors"
SAMPLE = Path(__file__).parent / "sample"
RUN_TIMEOUT = 60.0


@attrs.frozen
class EditorSetup:
    """A signed-in user, a copy of the sample workspace, and the environment to run an editor."""

    workspace: Path
    env: dict[str, str]
    backend: BackendProcess
    home: Path

    def run(self, argv: Sequence[str], *, timeout: float = RUN_TIMEOUT,
            stdin: str | None = None) -> str:
        """Run an editor to completion in the workspace; fail with its output unless rc is 0."""
        try:
            done = subprocess.run(
                list(argv), cwd=self.workspace, env=self.env, input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{argv[0]} did not finish in {timeout:.0f} s\n"
                        f"--- stdout\n{_text(exc.stdout)}\n--- stderr\n{_text(exc.stderr)}")
        if done.returncode != 0:
            pytest.fail(f"{argv[0]} exited with {done.returncode}\n"
                        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
        return done.stdout


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def editor_binary(name: str, executable: str) -> str:
    """The editor's executable, or skip the test saying why it is missing."""
    for folder in (EDITORS / "bin", Path(sys.executable).parent):
        candidate = folder / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(executable)
    if found:
        return found
    reason_file = EDITORS / "missing" / name
    reason = (reason_file.read_text().strip() if reason_file.exists()
              else "run .ci/install-editors to install it")
    pytest.skip(f"{name} is not installed: {reason}")


@pytest.fixture
def editor_setup(backend: BackendProcess, tmp_path: Path) -> Iterator[EditorSetup]:
    config = tmp_path / "config"
    config.mkdir()
    email, password, _ = backend.add_user()
    env = server_env(config)
    login = run_cli("login", "--server", backend.url, "--username", email, "--password-stdin",
                    stdin=password + "\n", env=env)
    assert login.returncode == 0, login.stderr
    workspace = tmp_path / "workspace"
    shutil.copytree(SAMPLE, workspace)
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    home = tmp_path / "home"
    for sub in ("config", "state", "data", "cache"):
        (home / sub).mkdir(parents=True)
    env.update({
        "OROPENDOLA_SERVER_URL": backend.url,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(EDITORS / "bin"),
                                 env.get("PATH", "")]),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "TERM": "xterm-256color",
    })
    yield EditorSetup(workspace, env, backend, home)
