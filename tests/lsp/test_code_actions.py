"""Code actions end to end: the real server, a real reference backend, a small sample project.

What each recorded client declares, and so which path the actions take (the tests ask
`ClientSupport` of the preset rather than naming editors):

=========================  ======================  =========  =========  ===========  ============
preset                     resolveSupport (+data)  document-  resource-  change-      showDocument
                                                   Changes    Ops create annotations
=========================  ======================  =========  =========  ===========  ============
visual-studio-code 1.65.2  ``edit``                yes        yes        yes          yes
neovim 0.11.4              ``edit``, ``command``   no         yes        no           yes
emacs 30.1 (eglot 1.17)    ``edit``, ``command``   yes        no         no           yes
emacs@29.1                 none (commands)         yes        no         no           no
helix 25.01.1              ``edit``, ``command``   yes        yes        no           no
=========================  ======================  =========  =========  ===========  ============

The test client applies edits as an editor would (`Editor`): it checks versions, applies text
edits to its buffers (and to disk for files it has not opened), creates files, and sends
``didChange``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from oropendola_ls.client_support import ClientSupport
from oropendola_ls.reference_backend.chat_engines.offline import HEADER
from tests.conftest import (
    BackendProcess,
    client_capabilities,
    make_client,
    request,
    server_env,
    wait_until,
)

Starter = Callable[..., BackendProcess]

SAMPLE = '''import json
import os


def add(a, b):
    return a + b


def collect(item, bucket=[]):
    """Append ``item`` to ``bucket`` and return it."""
    bucket.append(item)
    return bucket


def dump(data):
    """Serialise ``data``."""
    return json.dumps(data)
'''
TITLES = {"explain": "Oropendola: Explain", "fix": "Oropendola: Fix",
          "improve": "Oropendola: Improve", "document": "Oropendola: Document",
          "tests": "Oropendola: Generate tests"}
KINDS = {"Oropendola: Explain": "refactor", "Oropendola: Fix": "quickfix",
         "Oropendola: Improve": "refactor.rewrite", "Oropendola: Document": "refactor.rewrite",
         "Oropendola: Generate tests": "refactor"}
UNUSED_OS = types.Diagnostic(
    range=types.Range(start=types.Position(1, 7), end=types.Position(1, 9)),
    message="'os' imported but never used", severity=types.DiagnosticSeverity.Warning,
    code="unused-import", source="oropendola")
WAIT = 30.0


# -- the editor side ---------------------------------------------------------------------------


class Editor:
    """Buffers of the open documents, and ``workspace/applyEdit`` applied to them."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.applied: list[types.WorkspaceEdit] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply_edit(params: types.ApplyWorkspaceEditParams
                          ) -> types.ApplyWorkspaceEditResult:
            return self.apply(params.edit)

    def open(self, path: Path, language: str = "python") -> str:
        uri = path.as_uri()
        self.texts[uri], self.versions[uri] = path.read_text(encoding="utf-8"), 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                                 text=self.texts[uri])))
        return uri

    def change(self, uri: str, text: str) -> None:
        self.texts[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri,
                                                                version=self.versions[uri]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    def apply(self, edit: types.WorkspaceEdit) -> types.ApplyWorkspaceEditResult:
        operations: list[Any] = list(edit.document_changes or [])
        for uri, edits in (edit.changes or {}).items():
            operations.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri,
                                                                            version=None),
                edits=list(edits)))
        for operation in operations:  # all or nothing: check first
            if isinstance(operation, types.TextDocumentEdit):
                uri, version = operation.text_document.uri, operation.text_document.version
                if version is not None and self.versions.get(uri) != version:
                    return types.ApplyWorkspaceEditResult(
                        applied=False, failure_reason=f"{uri} is at another version")
        for operation in operations:
            if isinstance(operation, types.CreateFile):
                path = _path(operation.uri)
                if path.exists() and not (operation.options and operation.options.overwrite):
                    return types.ApplyWorkspaceEditResult(applied=False,
                                                          failure_reason=f"{path} exists")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("", encoding="utf-8")
            elif isinstance(operation, types.TextDocumentEdit):
                uri = operation.text_document.uri
                if uri in self.texts:
                    self.change(uri, _edited(self.texts[uri], operation.edits))
                else:
                    path = _path(uri)
                    path.write_text(_edited(path.read_text(encoding="utf-8"), operation.edits),
                                    encoding="utf-8")
            else:
                raise AssertionError(f"unexpected operation {operation!r}")
        self.applied.append(edit)
        return types.ApplyWorkspaceEditResult(applied=True)


def _path(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


def _offset(text: str, position: types.Position) -> int:
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[:position.line]) + position.character


def _edited(text: str, edits: Any) -> str:
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                       reverse=True):
        start, end = _offset(text, edit.range.start), _offset(text, edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
    return text


def range_of(text: str, snippet: str) -> types.Range:
    """The range of ``snippet`` (its first occurrence) in ``text``."""
    start = text.index(snippet)
    end = start + len(snippet)

    def position(offset: int) -> types.Position:
        before = text[:offset]
        return types.Position(before.count("\n"), offset - (before.rfind("\n") + 1))

    return types.Range(start=position(start), end=position(end))


# -- sessions ------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mod.py").write_text(SAMPLE, encoding="utf-8")
    return root


def support_of(preset: str) -> ClientSupport:
    return ClientSupport.of(client_capabilities(preset))


@contextlib.asynccontextmanager
async def session(capabilities: str | types.ClientCapabilities, config_dir: Path,
                  backend: BackendProcess, project: Path
                  ) -> AsyncIterator[tuple[LanguageClient, Editor]]:
    """The server, initialized with ``project`` as the one workspace folder, signed in."""
    client = make_client()
    editor = Editor(client)
    await client.start_io(sys.executable, "-m", "oropendola_ls", env=server_env(config_dir))
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities(capabilities) if isinstance(capabilities, str)
            else capabilities,
            process_id=os.getpid(),
            root_uri=project.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=project.as_uri(), name=project.name)],
            initialization_options={"serverUrl": backend.url}))
        email, password, _ = backend.add_user()
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        yield client, editor
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 15)


async def list_actions(client: LanguageClient, uri: str, where: types.Range,
                       diagnostics: list[types.Diagnostic] | None = None,
                       only: list[str] | None = None) -> list[types.CodeAction]:
    found = await asyncio.wait_for(client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=where,
            context=types.CodeActionContext(
                diagnostics=diagnostics or [],
                only=[types.CodeActionKind(o) for o in only] if only is not None else None))),
        5)
    actions = [a for a in found or [] if isinstance(a, types.CodeAction)]
    assert len(actions) == len(found or [])
    return actions


def pick(actions: list[types.CodeAction], action: str) -> types.CodeAction:
    return next(a for a in actions if a.title == TITLES[action])


async def choose(client: LanguageClient, editor: Editor, chosen: types.CodeAction) -> Any:
    """What an editor does with a chosen action: resolve and apply it, or run its command."""
    if chosen.command is not None:
        return await asyncio.wait_for(client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=chosen.command.command,
                                       arguments=chosen.command.arguments)), WAIT)
    resolved = await asyncio.wait_for(client.code_action_resolve_async(chosen), WAIT)
    if resolved.edit is not None:
        assert editor.apply(resolved.edit).applied
    return resolved


def messages(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages]


# -- listing ---------------------------------------------------------------------------------------


async def test_listing_is_instant_and_asks_nothing_of_a_held_backend(
        preset: str, config_dir: Path, start_backend: Starter, project: Path) -> None:
    backend = start_backend(0, "--control")
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        assert backend.control("chat/hold", hold=True)["hold"] is True
        try:
            selection = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
            started = time.monotonic()
            actions = await list_actions(client, uri, selection)
            assert time.monotonic() - started < 1.0
            assert [a.title for a in actions] == [TITLES[n] for n in
                                                  ("explain", "improve", "document", "tests")]
            assert all(a.kind == KINDS[a.title] for a in actions)
            # Every preset resolves `edit` with `data`: edits come from codeAction/resolve;
            # Explain is always a command (it shows a document, it edits nothing), and so is
            # Generate tests where the client cannot create files (it shows the answer).
            creates = support_of(preset).create_files
            for action in actions:
                if action.title == TITLES["explain"] or (
                        action.title == TITLES["tests"] and not creates):
                    assert action.data is None and action.command is not None
                    assert action.command.command == "oropendola.codeAction"
                else:
                    assert action.command is None and action.edit is None
                    assert action.data == {"uri": uri, "range": {
                        "start": {"line": 4, "character": 0}, "end": {"line": 6, "character": 0}},
                        "action": action.title.split(": ")[1].split()[0].lower()
                        .replace("generate", "tests"), "version": 1}

            # On a diagnostic, with no selection: Fix too, carrying it, on its whole line.
            cursor = types.Range(start=types.Position(1, 8), end=types.Position(1, 8))
            actions = await list_actions(client, uri, cursor, [UNUSED_OS])
            assert [a.title for a in actions] == [TITLES[n] for n in
                                                  ("explain", "fix", "improve", "document",
                                                   "tests")]
            fix = pick(actions, "fix")
            assert fix.kind == "quickfix" and list(fix.diagnostics or ()) == [UNUSED_OS]
            assert fix.data["range"] == {"start": {"line": 1, "character": 0},
                                         "end": {"line": 2, "character": 0}}
            only = await list_actions(client, uri, cursor, [UNUSED_OS], only=["quickfix"])
            assert [a.title for a in only] == [TITLES["fix"]]
            assert await list_actions(client, uri, cursor, [UNUSED_OS], only=["source"]) == []
            nothing = types.Range(start=types.Position(4, 3), end=types.Position(4, 3))
            assert await list_actions(client, uri, nothing) == []

            # The hold is real: resolving (which asks the backend) waits, listing does not.
            pending = asyncio.ensure_future(client.code_action_resolve_async(
                pick(await list_actions(client, uri, selection), "document")))
            await asyncio.sleep(1.0)
            assert not pending.done()
            started = time.monotonic()
            assert len(await list_actions(client, uri, selection)) == 4
            assert time.monotonic() - started < 1.0
        finally:
            backend.control("chat/hold", hold=False)
        resolved = await asyncio.wait_for(pending, WAIT)
        assert resolved.edit is not None


# -- resolving to edits ----------------------------------------------------------------------------


async def test_each_action_resolves_to_its_edit(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")

        # Fix removes the unused import the diagnostic names.
        imports = range_of(editor.texts[uri], "import json\nimport os\n")
        fix = pick(await list_actions(client, uri, imports, [UNUSED_OS]), "fix")
        resolved = await choose(client, editor, fix)
        assert editor.texts[uri].startswith("import json\n\n\ndef add(a, b):")
        assert "import os" not in editor.texts[uri]
        edit = resolved.edit
        support = support_of(preset)
        if support.document_changes:  # versioned; annotated where the client shows annotations
            (change,) = edit.document_changes
            assert change.text_document.version == 1
            (text_edit,) = change.edits
            if support.change_annotations:  # VS Code: needs confirmation
                assert isinstance(text_edit, types.AnnotatedTextEdit)
                annotation = edit.change_annotations[text_edit.annotation_id]
                assert annotation.label == "Oropendola: Fix" and annotation.needs_confirmation
            else:
                assert not isinstance(text_edit, types.AnnotatedTextEdit)
                assert edit.change_annotations is None
        else:  # Neovim declares no documentChanges: a plain `changes` map
            assert edit.document_changes is None and list(edit.changes) == [uri]

        # Document adds a docstring to the function without one.
        function = range_of(editor.texts[uri], "def add(a, b):\n    return a + b\n")
        await choose(client, editor, pick(await list_actions(client, uri, function), "document"))
        assert '    return a + b\n' in editor.texts[uri]
        assert 'def add(a, b):\n    """TODO: Summarize what add does.\n' in editor.texts[uri]

        # Improve rewrites the mutable default.
        start = editor.texts[uri].index("def collect")
        end = editor.texts[uri].index("def dump")
        collect = range_of(editor.texts[uri], editor.texts[uri][start:end])
        await choose(client, editor, pick(await list_actions(client, uri, collect), "improve"))
        assert "def collect(item, bucket=None):\n" in editor.texts[uri]
        assert "    if bucket is None:\n        bucket = []\n" in editor.texts[uri]
        assert "def dump(data):" in editor.texts[uri]  # the rest is untouched

        # Generate tests creates tests/test_mod.py where the client declares "create"
        # (test_commands_apply_edits_for_clients_without_resolve covers the others).
        if not support.create_files:
            return
        whole = range_of(editor.texts[uri], editor.texts[uri])
        resolved = await choose(client, editor,
                                pick(await list_actions(client, uri, whole), "tests"))
        created = project / "tests" / "test_mod.py"
        assert isinstance(resolved.edit.document_changes[0], types.CreateFile)
        assert resolved.edit.document_changes[0].uri == created.as_uri()
        text = created.read_text(encoding="utf-8")
        assert text.startswith('"""Tests for mod."""\n') and text.endswith("\n")
        assert "from mod import add, collect, dump" in text and "def test_collect()" in text

        # Again: the existing file is not overwritten; the next free name is used.
        resolved = await choose(client, editor,
                                pick(await list_actions(client, uri, whole), "tests"))
        assert resolved.edit.document_changes[0].uri == (
            project / "tests" / "test_mod_2.py").as_uri()
        assert created.read_text(encoding="utf-8") == text
        assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_commands_apply_edits_for_clients_without_resolve(
        config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session("emacs@29.1", config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        start, end = SAMPLE.index("def collect"), SAMPLE.index("def dump")
        actions = await list_actions(client, uri, range_of(SAMPLE, SAMPLE[start:end]))
        assert all(a.command is not None and a.data is None for a in actions)
        result = await choose(client, editor, pick(actions, "improve"))
        assert result == {"action": "improve", "applied": True, "uri": uri}
        assert "def collect(item, bucket=None):" in editor.texts[uri]
        assert editor.versions[uri] == 2
        (edit,) = editor.applied
        (change,) = edit.document_changes  # Emacs declares documentChanges: versioned
        assert change.text_document.version == 1

        # No "create" among its resource operations: the test file is shown, not created.
        whole = range_of(editor.texts[uri], editor.texts[uri])
        result = await choose(client, editor,
                              pick(await list_actions(client, uri, whole), "tests"))
        assert result["applied"] is False and result["shown"] == "message"
        assert not (project / "tests").exists()
        shown = next(m for m in messages(client) if m.startswith(TITLES["tests"]))
        assert "cannot create files" in shown and "`tests/test_mod.py`" in shown
        answer = _path(result["answerUri"]).read_text(encoding="utf-8")
        assert "```python\n\"\"\"Tests for mod.\"\"\"" in answer


# -- refusals --------------------------------------------------------------------------------------


async def test_an_edit_outside_the_workspace_folders_is_refused(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path,
        tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "other.py").write_text(SAMPLE, encoding="utf-8")
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(outside / "other.py")
        function = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
        actions = await list_actions(client, uri, function)
        for name in ("document", "tests"):
            with pytest.raises(JsonRpcException) as refused:
                await choose(client, editor, pick(actions, name))
            assert "outside the workspace folders" in str(refused.value)
        # The command path refuses the same way.
        payload = {**pick(actions, "improve").data}
        with pytest.raises(JsonRpcException) as refused:
            await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="oropendola.codeAction", arguments=[payload]))
        assert "outside the workspace folders" in str(refused.value)
        assert editor.applied == [] and not (outside / "tests").exists()
        assert editor.texts[uri] == SAMPLE
        await wait_until(lambda: sum("outside the workspace folders" in m
                                     for m in messages(client)) == 3)


async def test_a_document_changed_since_listing_refuses_the_stale_edit(
        preset: str, config_dir: Path, start_backend: Starter, project: Path) -> None:
    backend = start_backend(0, "--control")
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        function = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
        document = pick(await list_actions(client, uri, function), "document")
        editor.change(uri, "# a new first line\n" + SAMPLE)
        with pytest.raises(JsonRpcException) as refused:
            await choose(client, editor, document)
        assert "changed since the action was offered (version 1, now 2)" in str(refused.value)

        # Changed while the backend was answering: refused when the answer arrives.
        function = range_of(editor.texts[uri], "def add(a, b):\n    return a + b\n")
        document = pick(await list_actions(client, uri, function), "document")
        backend.control("chat/hold", hold=True)
        try:
            pending = asyncio.ensure_future(client.code_action_resolve_async(document))
            await asyncio.sleep(0.5)
            editor.change(uri, editor.texts[uri] + "\n# typed meanwhile\n")
        finally:
            backend.control("chat/hold", hold=False)
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(pending, WAIT)
        assert "(version 2, now 3)" in str(refused.value)
        assert editor.applied == [] and "TODO" not in editor.texts[uri]

        # The command path checks the same.
        payload = {**document.data}
        with pytest.raises(JsonRpcException) as refused:
            await client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="oropendola.codeAction", arguments=[payload]))
        assert "changed since the action was offered" in str(refused.value)
        assert editor.applied == []


# -- answers that are prose ----------------------------------------------------------------------


async def test_explain_streams_and_opens_the_answer_as_a_document(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    if not support_of(preset).show_document:
        pytest.skip(f"{preset} declares no window.showDocument: test_without_show_document_"
                    "explain_goes_to_an_open_chat_document_or_a_message covers it")
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        states: list[dict[str, Any]] = client.connection_states  # type: ignore[attr-defined]
        await wait_until(lambda: any(s["state"] == "connected" for s in states), 15)
        function = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
        explain = pick(await list_actions(client, uri, function), "explain")
        result = await choose(client, editor, explain)
        assert result["applied"] is False and result["shown"] == "document"
        (shown,) = client.shown_documents
        assert shown.uri == result["answerUri"] and shown.take_focus
        path = _path(shown.uri)
        assert path.parent == config_dir.parent / "state" / "answers"
        assert path.name.endswith("-explain.md")
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"{HEADER} a static reading of the selection (python, 2 lines)")
        assert "### `def add(a, b)` (line 5)\n- **Takes:** `a`, `b`\n" in text
        assert editor.applied == []
        # Progress: begun and ended under the action's title.
        runs = [r for r in client.progress_reports.values()
                if r and isinstance(r[0], types.WorkDoneProgressBegin)
                and r[0].title == TITLES["explain"]]
        assert runs and isinstance(runs[-1][-1], types.WorkDoneProgressEnd)
        streamed = "".join(r.message or "" for r in runs[-1]
                           if isinstance(r, types.WorkDoneProgressReport))
        assert "a static reading of the selection" in streamed


async def test_an_answer_without_code_is_shown_and_nothing_is_applied(
        preset: str, config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session(preset, config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        function = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
        complaint = types.Diagnostic(range=function, message="add is too short",
                                     code="style")
        fix = pick(await list_actions(client, uri, function, [complaint]), "fix")
        resolved = await choose(client, editor, fix)
        assert resolved.edit is None and editor.applied == []
        assert editor.texts[uri] == SAMPLE
        if support_of(preset).show_document:
            (shown,) = client.shown_documents
            text = _path(shown.uri).read_text(encoding="utf-8")
        else:  # the start of the answer as a message (no chat document is open)
            assert client.shown_documents == []
            text = next(m.message for m in client.messages
                        if "The answer has no code block" in m.message)
            text = text[text.index("> The answer"):]
        assert text.startswith("> The answer has no code block")
        assert f"{HEADER} nothing I can fix in the selection" in text


async def test_a_selection_sent_with_secrets_redacted_is_not_replaced(
        config_dir: Path, backend: BackendProcess, project: Path) -> None:
    secret = 'def token():\n    return "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\n'
    (project / "keys.py").write_text(secret, encoding="utf-8")
    async with session("visual-studio-code", config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "keys.py")
        document = pick(await list_actions(client, uri, range_of(secret, secret)), "document")
        with pytest.raises(JsonRpcException) as refused:
            await choose(client, editor, document)
        assert "secret-looking text was redacted" in str(refused.value)
        assert editor.applied == [] and editor.texts[uri] == secret


async def test_without_show_document_explain_goes_to_an_open_chat_document_or_a_message(
        config_dir: Path, backend: BackendProcess, project: Path) -> None:
    async with session("emacs@29.1", config_dir, backend, project) as (client, editor):
        uri = editor.open(project / "mod.py")
        function = range_of(SAMPLE, "def add(a, b):\n    return a + b\n")
        result = await choose(client, editor,
                              pick(await list_actions(client, uri, function), "explain"))
        assert result["shown"] == "message" and client.shown_documents == []
        shown = next(m for m in messages(client) if m.startswith(TITLES["explain"]))
        assert f"{HEADER} a static reading of the selection" in shown
        assert str(_path(result["answerUri"])) in shown

        (project / "notes.oropendola.md").write_text("# Notes\n", encoding="utf-8")
        notes = editor.open(project / "notes.oropendola.md", "markdown")
        result = await choose(client, editor,
                              pick(await list_actions(client, uri, function), "explain"))
        assert result["shown"] == "chatDocument"
        assert editor.texts[notes].startswith(
            "# Notes\n\n\n## Oropendola: Explain (mod.py, line 5)\n\n"
            f"{HEADER} a static reading of the selection")
        assert editor.texts[uri] == SAMPLE
