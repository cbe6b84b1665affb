"""Workspace indexing and search end to end: the real server, a real reference backend.

A generated sample workspace (a git repository and a plain folder) holds planted canary
secrets; they must never reach the backend's data directory.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, lsp_session, request


def make_sample(root: Path, canary: str) -> tuple[Path, Path]:
    """A git repository and a plain folder, with canaries in a .env, a key and a source file."""
    repo, plain = root / "repo", root / "plain"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "billing.py").write_text(
        '"""Billing."""\n\nimport os\n\n\n'
        "def compute_invoice_total(lines):\n"
        "    return sum(line.amount for line in lines)\n")
    (repo / "src" / "settings.py").write_text(
        f'OPENAI_API_KEY = "sk-{canary}Ab12Cd34Ef56Gh78"\nTIMEOUT = 30\n')
    (repo / "README.md").write_text("# Sample\n\nThe quarterly reconciliation report lives here.\n")
    (repo / ".env").write_text(f"DATABASE_PASSWORD={canary}-env\n")
    (repo / "id_rsa").write_text(
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{canary}key\n-----END OPENSSH PRIVATE KEY-----\n")
    (repo / ".gitignore").write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "generated.py").write_text("def compute_invoice_total(): pass\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=T"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "sample"], check=True)

    plain.mkdir()
    (plain / "notes.txt").write_text("Remember the zeppelin maintenance window on Fridays.\n")
    (plain / "tool.js").write_text("function launchZeppelin(speed) {\n  return speed * 2;\n}\n")
    return repo, plain


def backend_bytes(backend: BackendProcess) -> bytes:
    data = b""
    for path in backend.data.rglob("*"):
        if path.is_file():
            data += path.read_bytes()
    return data


async def sign_in(client: Any, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    await request(client, "oropendola/signIn", {"username": email, "password": password})


async def test_index_search_incremental_and_secrets(
        preset: str, config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    repo, plain = make_sample(tmp_path / "ws", canary)
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url},
                           folders=[repo, plain]) as client:
        await sign_in(client, backend)
        token = "index-progress"
        client.progress_reports.setdefault(token, [])
        first = await request(client, "oropendola/indexWorkspace", {"workDoneToken": token})
        assert first["filesSent"] == 6  # billing, settings, README, .gitignore, notes, tool
        assert first["skipped"]["secret_file"] == 2  # .env and id_rsa, never read
        assert len(first["folders"]) == 2
        assert any("Indexing" in (r.message or "") for r in client.progress_reports[token]
                   if isinstance(r, types.WorkDoneProgressReport))
        assert isinstance(client.progress_reports[token][-1], types.WorkDoneProgressEnd)

        found = await request(client, "oropendola/search", {"query": "compute_invoice_total"})
        assert found["results"], "the indexed function was not found"
        top = found["results"][0]
        assert top["uri"] == (repo / "src" / "billing.py").as_uri()
        assert top["range"]["start"]["line"] == 5  # 0-based: "def compute_invoice_total"
        assert all("build/" not in r["uri"] for r in found["results"])  # gitignored
        zeppelin = await request(client, "oropendola/search", {"query": "zeppelin"})
        assert {r["uri"] for r in zeppelin["results"]} == {
            (plain / "notes.txt").as_uri(), (plain / "tool.js").as_uri()}

        # The symbol picker of every editor searches the same index.
        symbols = await client.workspace_symbol_async(
            types.WorkspaceSymbolParams(query="compute_invoice_total"))
        assert symbols is not None
        assert [(s.location.uri, s.location.range.start.line) for s in symbols] == [
            (r["uri"], r["range"]["start"]["line"]) for r in found["results"]]
        assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="")) == []

        stored = backend_bytes(backend)
        assert canary.encode() not in stored
        assert b"TIMEOUT = 30" in stored  # the file was sent, with its secret redacted

        again = await request(client, "oropendola/indexWorkspace")
        assert again["filesSent"] == 0 and again["removed"] == 0

        (plain / "notes.txt").write_text("The airship maintenance window moved to Mondays.\n")
        edited = await request(client, "oropendola/indexWorkspace")
        assert edited["filesSent"] == 1
        (plain / "tool.js").unlink()
        deleted = await request(client, "oropendola/indexWorkspace")
        assert deleted["filesSent"] == 0 and deleted["removed"] == 1
        zeppelin = await request(client, "oropendola/search", {"query": "zeppelin"})
        assert zeppelin["results"] == []
        airship = await request(client, "oropendola/search", {"query": "airship"})
        assert [r["uri"] for r in airship["results"]] == [(plain / "notes.txt").as_uri()]

        forced = await request(client, "oropendola/indexWorkspace", {"force": True})
        assert forced["filesSent"] == 5

        memory = await request(client, "oropendola/memory")
        assert sorted(w["files"] for w in memory["workspaces"]) == [1, 4]


async def test_saved_files_keep_an_indexed_workspace_current(
        config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    repo, _ = make_sample(tmp_path / "ws", canary)
    async with lsp_session("visual-studio-code", config_dir,
                           {"serverUrl": backend.url, "indexOnStartup": True},
                           folders=[repo]) as client:
        await sign_in(client, backend)  # indexOnStartup waits for a session: index now
        await request(client, "oropendola/indexWorkspace")
        source = repo / "src" / "billing.py"
        source.write_text(source.read_text() + "\n\ndef refund_overpayment():\n    pass\n")
        client.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=source.as_uri())))

        async def found() -> bool:
            result = await request(client, "oropendola/search", {"query": "refund_overpayment"})
            return bool(result["results"])

        for _ in range(100):
            if await found():
                break
            await asyncio.sleep(0.1)
        assert await found(), "the saved file was not re-indexed"
    assert canary.encode() not in backend_bytes(backend)


async def test_index_on_startup_with_a_stored_session(
        config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path / "ws", f"CANARY{uuid.uuid4().hex}")
    email, password, _ = backend.add_user()
    async with lsp_session("neovim", config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
    async with lsp_session("neovim", config_dir,
                           {"serverUrl": backend.url, "indexOnStartup": True},
                           folders=[repo]) as client:
        async def indexed() -> bool:
            result = await request(client, "oropendola/search",
                                   {"query": "quarterly reconciliation"})
            return bool(result["results"])

        for _ in range(150):
            if await indexed():
                break
            await asyncio.sleep(0.1)
        assert await indexed(), "indexOnStartup did not index the workspace"


async def test_bad_files_are_skipped_with_reasons_and_the_server_stays_up(
        preset: str, config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "good.py").write_text("def fine_function():\n    return 1\n")
    with (folder / "huge.log").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MB without using the disk
    (folder / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 4)
    (folder / "latin1.txt").write_bytes(b"caf\xe9 " * 2 + b"\xff\xfe\x00\x81" * 200)
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "etc").symlink_to("/etc")
    (folder / "passwd-link").symlink_to("/etc/passwd")
    (folder / "dangling").symlink_to(folder / "nowhere")
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url},
                           folders=[folder]) as client:
        await sign_in(client, backend)
        report = await request(client, "oropendola/indexWorkspace")
        assert report["filesSent"] == 1
        skipped = report["skipped"]
        assert skipped.get("too_large") == 1
        assert skipped.get("binary", 0) + skipped.get("invalid_utf8", 0) == 2
        assert skipped.get("symlink_loop") == 1
        assert skipped.get("symlink_outside") == 2
        assert skipped.get("unreadable") == 1
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True


async def test_search_input_errors_and_signed_out(
        config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    async with lsp_session("neovim", config_dir, {"serverUrl": backend.url},
                           folders=[tmp_path]) as client:
        with pytest.raises(JsonRpcException) as signed_out:
            await request(client, "oropendola/indexWorkspace")
        assert "Not signed in" in signed_out.value.message
        with pytest.raises(JsonRpcException) as bad:
            await request(client, "oropendola/search", {"query": "x", "limit": 0})
        assert bad.value.code == -32602
        with pytest.raises(JsonRpcException) as missing:
            await request(client, "oropendola/search", {})
        assert missing.value.code == -32602 and "query" in missing.value.message
        assert await client.workspace_symbol_async(types.WorkspaceSymbolParams(query="x")) == []
