"""Fixtures for the workspace indexer tests: real temporary trees, real `git` repositories.

Git runs with a throwaway HOME and no system config, so a developer's global excludes file or
settings cannot change what a test sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GIT = shutil.which("git")
requires_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("OROPENDOLA_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=root, capture_output=True, text=True, check=True,
    )
    return done.stdout


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.fixture
def tree(tmp_path: Path) -> Callable[..., Path]:
    """``tree(files, git=False, commit=False)``: a fresh folder holding ``files``."""
    count = 0

    def make(files: dict[str, str | bytes], *, git_repo: bool = False,
             commit: bool = False) -> Path:
        nonlocal count
        count += 1
        root = tmp_path / f"ws{count}"
        root.mkdir()
        write(root, files)
        if git_repo:
            git(root, "init", "-q")
            if commit:
                git(root, "add", "-A")
                git(root, "commit", "-q", "-m", "initial")
        return root

    return make


class Recorder:
    """A ``send`` that keeps every body it is given (deep enough: bodies are not reused)."""

    def __init__(self, fail: Callable[[int, dict[str, Any]], None] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0
        self.fail = fail

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.fail is not None:
            self.fail(self.calls, body)
        self.bodies.append(body)
        return {"success": True}

    @property
    def paths(self) -> list[str]:
        return [f["path"] for body in self.bodies for f in body["files"]]

    @property
    def removed(self) -> list[str]:
        return [p for body in self.bodies for p in body["removed"]]

    def content(self, path: str) -> str:
        for body in self.bodies:
            for f in body["files"]:
                if f["path"] == path:
                    return str(f["content"])
        raise KeyError(path)

    def clear(self) -> None:
        self.bodies.clear()
        self.calls = 0
