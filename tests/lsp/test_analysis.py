"""File analysis as diagnostics, and file upload, end to end: the real server process, a real
reference backend over loopback (its ``files.analyze`` runs real static checks).

What reached the backend is counted from the server's own log (``-vv``): the client logs every
HTTP exchange (``files.analyze POST ... -> 200``) and the feature logs each analysis it sends.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.workspace import PositionCodec
from pytest_lsp import LanguageClient

from oropendola_ls.features.analysis import Positions, to_diagnostic
from tests.conftest import (
    BackendProcess,
    lsp_session,
    request,
    run_cli,
    server_env,
    to_json,
    wait_until,
)

ANALYZE = "oropendola/analyzeFile"
ATTACH = "oropendola.attachFile"
WAIT = 15.0

# Line 2 holds an emoji (2 UTF-16 units, 4 UTF-8 bytes) and an accented letter before the
# unused import, so its columns differ in every encoding.
FLAWED = (
    "import os\n"
    'label = "é😀"; import json\n'
    "\n"
    "\n"
    "def f():\n"
    "    try:\n"
    "        return label\n"
    "    except:\n"
    "        return None \n"
)
FIXED = 'label = "é😀"\n\n\ndef f():\n    return label\n'
# (rule, severity, start line, start column, end line, end column), columns in code points.
FLAWED_FINDINGS = [
    ("unused-import", 2, 0, 7, 0, 9),
    ("unused-import", 2, 1, 21, 1, 25),
    ("bare-except", 2, 7, 4, 7, 10),
    ("trailing-whitespace", 3, 8, 19, 8, 20),
]


class RecordingDiagnostics(dict[str, Sequence[types.Diagnostic]]):
    """``client.diagnostics`` that also keeps every publication, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[str, Sequence[types.Diagnostic]]] = []

    def __setitem__(self, uri: str, diagnostics: Sequence[types.Diagnostic]) -> None:
        self.history.append((uri, diagnostics))
        super().__setitem__(uri, diagnostics)

    def published(self, uri: str) -> list[Sequence[types.Diagnostic]]:
        return [d for u, d in self.history if u == uri]


def recording(client: LanguageClient) -> RecordingDiagnostics:
    client.diagnostics = RecordingDiagnostics()
    return client.diagnostics


async def signed_in(client: LanguageClient, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    await request(client, "oropendola/signIn", {"username": email, "password": password})


def encoding(client: LanguageClient) -> str:
    result: types.InitializeResult = client.init_result  # type: ignore[attr-defined]
    return str(result.capabilities.position_encoding or "utf-16")


def units(line: str, column: int, encoding: str) -> int:
    prefix = line[:column]
    if encoding == "utf-8":
        return len(prefix.encode("utf-8"))
    if encoding == "utf-32":
        return len(prefix)
    return len(prefix.encode("utf-16-le")) // 2


def expected(text: str, findings: list[tuple[str, int, int, int, int, int]], enc: str
             ) -> list[tuple[Any, ...]]:
    lines = text.split("\n")
    return [(rule, severity, sl, units(lines[sl], sc, enc), el, units(lines[el], ec, enc))
            for rule, severity, sl, sc, el, ec in findings]


def shape(diagnostic: types.Diagnostic | dict[str, Any]) -> tuple[Any, ...]:
    d: dict[str, Any] = to_json(diagnostic) if isinstance(diagnostic, dict) else {
        "code": diagnostic.code, "severity": int(diagnostic.severity or 0),
        "range": {"start": {"line": diagnostic.range.start.line,
                            "character": diagnostic.range.start.character},
                  "end": {"line": diagnostic.range.end.line,
                          "character": diagnostic.range.end.character}}}
    r = d["range"]
    return (d["code"], d["severity"], r["start"]["line"], r["start"]["character"],
            r["end"]["line"], r["end"]["character"])


def open_document(client: LanguageClient, path: Path, text: str, language: str = "python"
                  ) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                             text=text)))
    return uri


def change_and_save(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
    save(client, uri)


def save(client: LanguageClient, uri: str) -> None:
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))


def backend_calls(log_file: Path, name: str) -> int:
    """HTTP exchanges with endpoint ``name`` the server made (its client's debug log)."""
    return len(re.findall(rf"\b{re.escape(name)} POST ", log_file.read_text()))


def analyses_sent(log_file: Path, relpath: str) -> int:
    return len(re.findall(rf"sending {re.escape(relpath)} to files\.analyze",
                          log_file.read_text()))


def failures(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if "could not analyse" in m.message]


async def attach(client: LanguageClient, argument: Any) -> Any:
    return to_json(await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=ATTACH, arguments=[argument])), 30))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    (path / "pkg").mkdir(parents=True)
    return path


def session(preset: str, config_dir: Path, backend: BackendProcess, project: Path,
            **settings: Any) -> Any:
    log_file = config_dir.parent / "server.log"
    return lsp_session(preset, config_dir, {"serverUrl": backend.url, **settings},
                       workspace=project, args=("-vv", "--log-file", str(log_file)))


# -- end to end ---------------------------------------------------------------------------------


async def test_analyze_file_returns_and_publishes_diagnostics(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project) as client:
        diagnostics = recording(client)
        await signed_in(client, backend)
        uri = open_document(client, project / "pkg" / "mod.py", FLAWED)
        result = await request(client, ANALYZE, {"textDocument": {"uri": uri}})

        want = expected(FLAWED, FLAWED_FINDINGS, encoding(client))
        assert [shape(d) for d in result["diagnostics"]] == want
        assert all(d["source"] == "oropendola" for d in result["diagnostics"])
        assert "is imported but never used" in result["diagnostics"][0]["message"]
        await wait_until(lambda: bool(diagnostics.published(uri)), WAIT)
        assert [shape(d) for d in diagnostics[uri]] == want
        assert diagnostics[uri][0].source == "oropendola"

        # Not open: the file on disk is read (here a syntax error: severity 1).
        broken = project / "pkg" / "broken.py"
        broken.write_text("def f(:\n    pass\n")
        result = await request(client, ANALYZE, {"textDocument": {"uri": broken.as_uri()}})
        assert [d["severity"] for d in result["diagnostics"]] == [1]
        assert result["diagnostics"][0]["range"]["start"]["line"] == 0
        await wait_until(lambda: bool(diagnostics.published(broken.as_uri())), WAIT)
    log_file = config_dir.parent / "server.log"
    assert analyses_sent(log_file, "pkg/mod.py") == 1  # the path relative to its folder
    assert analyses_sent(log_file, "pkg/broken.py") == 1


async def test_analyze_on_save_publishes_then_clears(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project, analyzeOnSave=True) as client:
        result: types.InitializeResult = client.init_result
        sync = result.capabilities.text_document_sync
        assert isinstance(sync, types.TextDocumentSyncOptions) and sync.save
        diagnostics = recording(client)
        await signed_in(client, backend)
        uri = open_document(client, project / "pkg" / "mod.py", FLAWED)
        save(client, uri)
        await wait_until(lambda: len(diagnostics.published(uri)) == 1, WAIT)
        assert [shape(d) for d in diagnostics[uri]] == expected(
            FLAWED, FLAWED_FINDINGS, encoding(client))

        change_and_save(client, uri, 2, FIXED)
        await wait_until(lambda: len(diagnostics.published(uri)) == 2, WAIT)
        assert list(diagnostics[uri]) == []  # the fixed file's diagnostics are cleared

        # A backend failure on save is shown once, not once per save.
        await request(client, "oropendola/signOut")
        for version in (3, 4):
            change_and_save(client, uri, version, FLAWED)
            await asyncio.sleep(0.6)  # past the debounce: each save is analysed on its own
        await wait_until(lambda: len(failures(client)) >= 1, WAIT)
        await asyncio.sleep(0.3)
        assert len(failures(client)) == 1 and "Not signed in" in failures(client)[0]
        assert len(diagnostics.published(uri)) == 2  # what was published stays
    assert analyses_sent(config_dir.parent / "server.log", "pkg/mod.py") == 4


async def test_a_burst_of_saves_costs_one_analysis_of_the_last_version(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project, analyzeOnSave=True) as client:
        diagnostics = recording(client)
        await signed_in(client, backend)
        uri = open_document(client, project / "burst.py", "")
        loop = asyncio.get_running_loop()
        started = loop.time()
        for version in range(1, 6):  # version n has n unused imports
            text = "".join(f"import m{i}\n" for i in range(1, version + 1))
            change_and_save(client, uri, version + 1, text)
            await asyncio.sleep(0)  # let the writes go out
        assert loop.time() - started < 0.1
        await wait_until(lambda: bool(diagnostics.published(uri)), WAIT)
        await asyncio.sleep(1.0)  # longer than the debounce: any stale analysis would show
        published = diagnostics.published(uri)
        assert len(published) == 1
        assert [d.message for d in published[0]] == [
            f"'m{i}' is imported but never used" for i in range(1, 6)]

        # didClose cancels a pending analysis (and clears nothing).
        save(client, uri)
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        await asyncio.sleep(0.6)
        assert len(diagnostics.published(uri)) == 1
    log_file = config_dir.parent / "server.log"
    assert analyses_sent(log_file, "burst.py") == 1
    assert backend_calls(log_file, "files.analyze") == 1


async def test_a_save_before_the_configuration_arrives_is_analysed(
        config_dir: Path, backend: BackendProcess, project: Path) -> None:
    """Neovim sends settings only through workspace/configuration, and saves whenever the user
    does: a save made before the server has read them still follows analyzeOnSave."""
    email, password, _ = backend.add_user()
    login = run_cli("login", "--server", backend.url, "--username", email, "--password-stdin",
                    stdin=password + "\n", env=server_env(config_dir))
    assert login.returncode == 0, login.stderr
    async with lsp_session("neovim", config_dir, {"serverUrl": backend.url}, workspace=project,
                           configuration={"serverUrl": backend.url, "analyzeOnSave": True},
                           ) as client:
        diagnostics = recording(client)
        uri = open_document(client, project / "pkg" / "mod.py", FLAWED)
        save(client, uri)  # right after initialized, in the same burst of messages
        await wait_until(lambda: bool(diagnostics.published(uri)), WAIT)
        assert [shape(d) for d in diagnostics[uri]] == expected(
            FLAWED, FLAWED_FINDINGS, encoding(client))


async def test_analyze_on_save_off_publishes_nothing(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project) as client:
        diagnostics = recording(client)
        await signed_in(client, backend)
        uri = open_document(client, project / "pkg" / "mod.py", FLAWED)
        save(client, uri)
        change_and_save(client, uri, 2, FLAWED + "\n")
        await asyncio.sleep(1.0)  # three times the debounce
        assert diagnostics.published(uri) == []
    assert backend_calls(config_dir.parent / "server.log", "files.analyze") == 0


async def test_secret_large_and_foreign_files_are_refused_unsent(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    env_file = project / ".env"
    env_file.write_text("OPENAI_API_KEY=sk-live-abcdefghijklmnopqrstuvwx123456\n")
    big = project / "big.py"
    with big.open("wb") as handle:
        handle.truncate(5 * 2**20 + 1)
    async with session(preset, config_dir, backend, project, analyzeOnSave=True) as client:
        diagnostics = recording(client)
        await signed_in(client, backend)
        uri = open_document(client, env_file, env_file.read_text(), "dotenv")
        with pytest.raises(JsonRpcException) as refused:
            await request(client, ANALYZE, {"textDocument": {"uri": uri}})
        assert refused.value.code == types.LSPErrorCodes.RequestFailed
        assert to_json(refused.value.data) == {"kind": "secret_file"}
        assert ".env" in refused.value.message and "secret" in refused.value.message
        with pytest.raises(JsonRpcException) as refused:
            await attach(client, {"uri": uri})
        assert to_json(refused.value.data) == {"kind": "secret_file"}
        save(client, uri)  # on save too: skipped quietly

        for method in ("analyze", "attach"):
            with pytest.raises(JsonRpcException) as refused:
                if method == "analyze":
                    await request(client, ANALYZE, {"textDocument": {"uri": big.as_uri()}})
                else:
                    await attach(client, {"uri": big.as_uri()})
            assert to_json(refused.value.data) == {"kind": "too_large"}
            assert "5 MiB" in refused.value.message

        with pytest.raises(JsonRpcInvalidParams):
            await request(client, ANALYZE, {"textDocument": {"uri": "untitled:Untitled-1"}})
        with pytest.raises(JsonRpcInvalidParams):
            await request(client, ANALYZE, {"textDocument": {}})
        await asyncio.sleep(0.6)  # past the debounce of the save
        assert diagnostics.published(uri) == []
        assert (await request(client, "oropendola/status"))["signedIn"]  # still up
    log_file = config_dir.parent / "server.log"
    assert backend_calls(log_file, "files.analyze") == 0
    assert backend_calls(log_file, "files.upload") == 0
    assert "sk-live-abcdefghijklmnop" not in log_file.read_text()


async def test_attach_file_uploads_the_bytes(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    data = bytes(range(256)) * 40 + b"\xff\xfe not UTF-8"
    path = project / "pkg" / "blob.bin"
    path.write_bytes(data)
    async with session(preset, config_dir, backend, project) as client:
        await signed_in(client, backend)
        result = await attach(client, {"uri": path.as_uri(), "conversationId": "conv-1"})
        assert result == {
            "document_id": "doc-" + hashlib.sha256(data).hexdigest()[:16],  # the exact bytes
            "filename": "blob.bin", "size": len(data), "status": "received",
        }
        with pytest.raises(JsonRpcException) as missing:
            await attach(client, {"uri": (project / "nope.txt").as_uri()})
        assert to_json(missing.value.data) == {"kind": "not_found"}
        with pytest.raises(JsonRpcInvalidParams):
            await attach(client, {"conversationId": "conv-1"})
    assert backend_calls(config_dir.parent / "server.log", "files.upload") == 1


# -- positions (no server) ----------------------------------------------------------------------


@pytest.mark.parametrize(("enc", "column"), [("utf-16", 4), ("utf-8", 7), ("utf-32", 3)])
def test_columns_follow_the_negotiated_encoding(enc: str, column: int) -> None:
    positions = Positions('"😀é"x\n', '"😀é"x\n', PositionCodec(enc))
    assert positions.position(1, 3) == types.Position(0, column)


def test_out_of_range_positions_are_clamped_and_malformed_findings_dropped() -> None:
    text = "ab\ncd\n"
    positions = Positions(text, text, PositionCodec("utf-16"))
    finding = {"rule": "r", "severity": "hint", "message": "m",
               "startLine": 0, "startColumn": -4, "endLine": 99, "endColumn": 99}
    diagnostic = to_diagnostic(finding, positions)
    assert diagnostic is not None and diagnostic.severity == types.DiagnosticSeverity.Hint
    assert diagnostic.range == types.Range(types.Position(0, 0), types.Position(2, 0))
    assert to_diagnostic({**finding, "startLine": 2, "startColumn": 9, "endLine": 1},
                         positions).range == types.Range(  # type: ignore[union-attr]
        types.Position(1, 2), types.Position(1, 2))  # an end before its start: empty range
    for bad in ({**finding, "severity": "fatal"}, {**finding, "startLine": "1"},
                {**finding, "message": None}, {**finding, "startColumn": True}, ["x"]):
        assert to_diagnostic(bad, positions) is None


def test_positions_are_mapped_back_across_redactions() -> None:
    original = 'KEY = "sk_live_abcdefghijklmnop1234"; import json\nx = 1\n'
    sent = 'KEY = "[REDACTED:stripe_key]"; import json\nx = 1\n'
    positions = Positions(original, sent, PositionCodec("utf-16"))
    json_at = sent.index("json")
    assert positions.position(1, json_at) == types.Position(0, original.index("json"))
    assert positions.position(1, sent.index("REDACTED")) == types.Position(0, 7)
    assert positions.position(2, 4) == types.Position(1, 4)
