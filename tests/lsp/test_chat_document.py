"""The chat document end to end: code actions, answers streamed in with workspace/applyEdit.

The test client behaves like an editor: it keeps the document's text, applies the server's
edits only when their version is the document's current one (refusing them otherwise, as
editors do), and reports every change, its own typing included, with didChange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.workspace import TextDocument
from pytest_lsp import LanguageClient

from oropendola_ls.chat_document import ANSWER_HEADER, ChatDocument
from oropendola_ls.client_support import ClientSupport
from tests.conftest import (
    BackendProcess,
    client_capabilities,
    lsp_session,
    request,
    wait_until,
)

Starter = Callable[..., BackendProcess]
SEND = "oropendola.sendChatDocument"
RUN = "oropendola.runShellCommand"
QUESTION = "What does the reference backend do?"


class Editor:
    """The documents as the editor has them, and the server's edits applied to them."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.documents: dict[str, TextDocument] = {}
        self.applied = 0
        self.refused = 0
        self.type_first: list[tuple[str, int, int, str]] = []
        """Typing that happens just before the next edit arrives (so that edit is refused)."""

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply_edit(params: types.ApplyWorkspaceEditParams
                          ) -> types.ApplyWorkspaceEditResult:
            return self.apply_edit(params)

    def open(self, uri: str, text: str, language: str = "markdown") -> None:
        self.documents[uri] = TextDocument(uri, text, version=1, language_id=language)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1,
                                                 text=text)))

    def text(self, uri: str) -> str:
        return self.documents[uri].source

    def type(self, uri: str, line: int, character: int, text: str) -> None:
        """The user types ``text`` at a place."""
        where = types.Position(line=line, character=character)
        self._change(uri, [types.TextDocumentContentChangePartial(
            range=types.Range(start=where, end=where), text=text)])

    def append(self, uri: str, text: str) -> None:
        document = self.documents[uri]
        lines = document.source.split("\n")
        self.type(uri, len(lines) - 1, len(lines[-1]), text)

    def _change(self, uri: str, changes: list[types.TextDocumentContentChangePartial]) -> None:
        document = self.documents[uri]
        for change in changes:
            document.apply_change(change)
        assert document.version is not None
        document.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri,
                                                                version=document.version),
            content_changes=list(changes)))

    def apply_edit(self, params: types.ApplyWorkspaceEditParams
                      ) -> types.ApplyWorkspaceEditResult:
        while self.type_first:
            self.type(*self.type_first.pop(0))
        edit = params.edit
        batches: list[tuple[str, int | None, list[types.TextEdit]]] = []
        for change in edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            batches.append((change.text_document.uri, change.text_document.version,
                            [e for e in change.edits if isinstance(e, types.TextEdit)]))
        for uri, edits in (edit.changes or {}).items():
            batches.append((uri, None, list(edits)))
        for uri, version, _ in batches:
            if uri not in self.documents or (version is not None
                                             and version != self.documents[uri].version):
                self.refused += 1
                return types.ApplyWorkspaceEditResult(applied=False,
                                                      failure_reason="version mismatch")
        for uri, _, edits in batches:
            # Every edit's range refers to the text before the edit: apply from the end.
            ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                             reverse=True)
            self._change(uri, [types.TextDocumentContentChangePartial(range=e.range,
                                                                      text=e.new_text)
                               for e in ordered])
        self.applied += 1
        return types.ApplyWorkspaceEditResult(applied=True)


async def signed_in(client: LanguageClient, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    await request(client, "oropendola/signIn", {"username": email, "password": password})


async def connected(client: LanguageClient) -> None:
    """Wait for the realtime channel, so answers stream."""
    await wait_until(lambda: any(s["state"] == "connected"
                                 for s in client.connection_states),  # type: ignore[attr-defined]
                     15)


async def actions_at(client: LanguageClient, uri: str, line: int, character: int = 0,
                     end_line: int | None = None) -> list[types.CodeAction]:
    start = types.Position(line=line, character=character)
    end = types.Position(line=end_line, character=0) if end_line is not None else start
    found = await asyncio.wait_for(client.text_document_code_action_async(
        types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                               range=types.Range(start=start, end=end),
                               context=types.CodeActionContext(diagnostics=[]))), 10)
    return [a for a in found or [] if isinstance(a, types.CodeAction)]


def send_action(actions: list[types.CodeAction]) -> types.CodeAction | None:
    return next((a for a in actions if a.title == "Send to Oropendola"), None)


async def execute(client: LanguageClient, command: types.Command, msg_id: str | None = None
                  ) -> Any:
    params = types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
    if msg_id is None:
        return await asyncio.wait_for(client.workspace_execute_command_async(params), 60)
    return await asyncio.wait_for(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, params, msg_id=msg_id), 60)


def answer_of(text: str) -> str:
    """The text of the last answer section."""
    doc = ChatDocument.parse(text)
    section = [s for s in doc.sections if s.role == "oropendola"][-1]
    return "\n".join(doc.lines[section.heading_line + 2:section.end_line])


async def test_send_writes_the_answer_and_the_next_heading(
        preset: str, config_dir: Path, start_backend: Starter, tmp_path: Path) -> None:
    backend = start_backend(0, "--control")
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        editor = Editor(client)
        await signed_in(client, backend)
        await connected(client)
        uri = (tmp_path / "notes.oropendola.md").as_uri()
        editor.open(uri, f"## You\n\n{QUESTION}\n")

        # Listing asks nothing of the backend: held answers would wait, and none does.
        backend.control("chat/hold", hold=True)
        started = time.monotonic()
        action = send_action(await actions_at(client, uri, 2, 3))
        assert time.monotonic() - started < 5
        assert backend.control("chat/hold", hold=True)["waiting"] == 0
        backend.control("chat/hold", hold=False)
        assert action is not None and action.kind == types.CodeActionKind.Empty
        assert action.command is not None and action.command.command == SEND
        assert list(action.command.arguments or []) == [{"uri": uri}]
        # Not on the preamble of a document without one, but anywhere in the question.
        assert send_action(await actions_at(client, uri, 0)) is not None
        assert send_action(await actions_at(client, uri, 3)) is not None

        result = await execute(client, action.command)
        text = editor.text(uri)
        conversation = result["conversationId"]
        assert conversation
        assert text == (f"<!-- oropendola:conversation={conversation} -->\n\n"
                        f"## You\n\n{QUESTION}\n\n{ANSWER_HEADER}{result['content']}"
                        + ("" if result["content"].endswith("\n") else "\n") + "\n## You\n\n")
        history = await request(client, "oropendola/history",
                                {"conversationId": conversation})
        assert history["messages"][-1]["role"] == "assistant"
        assert history["messages"][-1]["content"] == result["content"]
        assert answer_of(text).rstrip("\n") == result["content"].rstrip("\n")
        # Answered: no Send until there is a new message.
        assert send_action(await actions_at(client, uri, 2)) is None
        lines = text.split("\n")
        assert send_action(await actions_at(client, uri, len(lines) - 1)) is None

        # The next message continues the same conversation.
        editor.append(uri, "And what does it answer offline?\n")
        lines = editor.text(uri).split("\n")
        action = send_action(await actions_at(client, uri, len(lines) - 2))
        assert action is not None and action.command is not None
        again = await execute(client, action.command)
        assert again["conversationId"] == conversation
        history = await request(client, "oropendola/history",
                                {"conversationId": conversation})
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"] * 2
        assert history["messages"][2]["content"] == "And what does it answer offline?"
        final = ChatDocument.parse(editor.text(uri))
        assert [s.role for s in final.sections] == ["you", "oropendola"] * 2 + ["you"]
        assert final.conversation is not None and final.conversation.id == conversation
        assert editor.text(uri).count("oropendola:conversation") == 1


async def test_typing_while_the_answer_streams_is_kept(
        preset: str, config_dir: Path, start_backend: Starter, tmp_path: Path) -> None:
    backend = start_backend(0, "--control")
    backend.control("chat/pace", interval=0.05)
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        editor = Editor(client)
        await signed_in(client, backend)
        await connected(client)
        uri = (tmp_path / "typing.oropendola.md").as_uri()
        editor.open(uri, f"Notes:\n\n## You\n\n{QUESTION}\n")
        action = send_action(await actions_at(client, uri, 4))
        assert action is not None and action.command is not None
        sent = asyncio.ensure_future(execute(client, action.command))

        def streamed() -> str:
            text = editor.text(uri)
            return text.split(ANSWER_HEADER, 1)[1] if ANSWER_HEADER in text else ""

        await wait_until(lambda: len(streamed()) > 20, 20)
        # The user types at the instant an edit is on its way. VS Code, Emacs and Helix declare
        # versioned edits (documentChanges) and refuse that edit: it is rebuilt and sent again.
        # Neovim does not declare them, so its edits are plain `changes` (the typing is on
        # another line: the edit still lands in place).
        editor.type_first.append((uri, 0, 0, "!"))
        await wait_until(lambda: not editor.type_first, 10)
        versioned = ClientSupport.of(client_capabilities(preset)).document_changes
        assert editor.refused == (1 if versioned else 0)
        typed = 0
        while not sent.done() and typed < 40:
            first_line = editor.text(uri).split("\n")[0]
            editor.type(uri, 0, len(first_line), "x")  # in the preamble: "!Notes:xxx…"
            typed += 1
            await asyncio.sleep(0.02)
        editor.type_first.append((uri, 1, 0, "more notes"))
        result = await sent
        text = editor.text(uri)
        assert text.startswith("!Notes:" + "x" * typed + "\nmore notes\n")
        assert answer_of(text).rstrip("\n") == result["content"].rstrip("\n")
        assert text.endswith("\n## You\n\n")
        assert editor.applied > 3  # streamed in several edits, not one


async def test_a_shell_block_in_the_answer_offers_run_through_the_gate(
        preset: str, config_dir: Path, start_backend: Starter, tmp_path: Path) -> None:
    backend = start_backend(0, "--control")
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url},
                           folders=[workspace]) as client:
        editor = Editor(client)
        await signed_in(client, backend)
        await request(client, "oropendola/indexWorkspace")
        uri = (workspace / "ask.oropendola.md").as_uri()
        editor.open(uri, "## You\n\nhow do I run the tests?\n")
        action = send_action(await actions_at(client, uri, 2))
        assert action is not None and action.command is not None
        await execute(client, action.command)
        doc = ChatDocument.parse(editor.text(uri))
        commands = doc.shell_commands()
        assert [c.command for c in commands] == ["pytest -q"]
        block = commands[0].block

        outside = await actions_at(client, uri, block.start_line - 1)
        assert not [a for a in outside if a.title.startswith("Run: ")]
        for line in (block.start_line, commands[0].start_line, block.end_line):
            runs = [a for a in await actions_at(client, uri, line, 2)
                    if a.title.startswith("Run: ")]
            assert [a.title for a in runs] == ["Run: `pytest -q`"]
        # A selection that meets the block offers it too.
        runs = [a for a in await actions_at(client, uri, 0, 0, block.start_line)
                if a.title.startswith("Run: ")]
        assert len(runs) == 1
        run = runs[0]
        assert run.kind == types.CodeActionKind.Empty
        assert run.command is not None and run.command.command == RUN
        line = commands[0].start_line
        assert list(run.command.arguments or []) == [{
            "command": "pytest -q", "uri": uri,
            "range": {"start": {"line": line, "character": 0},
                      "end": {"line": line, "character": len("pytest -q")}}}]

        # The command goes through the gate, which decides as it does for any command.
        verdict = await request(client, "oropendola/checkCommand", {"command": "pytest -q"})
        try:
            outcome = await execute(client, run.command)
        except JsonRpcException as exc:  # a blocking policy answers with an error
            assert verdict["decision"] == "block", exc
        else:
            assert outcome["decision"] == verdict["decision"]


async def test_cancel_keeps_the_partial_answer(
        preset: str, config_dir: Path, start_backend: Starter, tmp_path: Path) -> None:
    backend = start_backend(0, "--control")
    backend.control("chat/pace", interval=0.1)
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        editor = Editor(client)
        await signed_in(client, backend)
        await connected(client)
        uri = (tmp_path / "cancel.oropendola.md").as_uri()
        editor.open(uri, f"## You\n\n{QUESTION}\n")
        action = send_action(await actions_at(client, uri, 2))
        assert action is not None and action.command is not None
        sent = asyncio.ensure_future(execute(client, action.command, msg_id="chat-doc-cancel"))
        await wait_until(lambda: ANSWER_HEADER in editor.text(uri)
                         and len(editor.text(uri).split(ANSWER_HEADER)[-1]) > 20, 20)
        client.cancel_request(types.CancelParams(id="chat-doc-cancel"))
        with pytest.raises(JsonRpcRequestCancelled):
            await sent
        await wait_until(lambda: editor.text(uri).endswith("## You\n\n"), 10)
        text = editor.text(uri)
        partial = text.split(ANSWER_HEADER, 1)[1].split("_(cancelled)_")[0].strip()
        assert len(partial) > 20
        assert "\n\n_(cancelled)_\n\n## You\n\n" in text
        # Nothing is written after the cancel.
        await asyncio.sleep(0.5)
        assert editor.text(uri) == text
        # The last question is answered (partly): a new message is needed to send again.
        assert send_action(await actions_at(client, uri, 2)) is None


async def test_markdown_with_a_you_heading_is_a_chat_and_other_files_are_not(
        config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    async with lsp_session("visual-studio-code", config_dir, {"serverUrl": backend.url}
                           ) as client:
        editor = Editor(client)
        named = (tmp_path / "scratch.md").as_uri()
        editor.open(named, "# Scratch\n\n## You\n\nExplain the indexer.\n")
        assert send_action(await actions_at(client, named, 4)) is not None
        assert send_action(await actions_at(client, named, 0)) is None  # not in the question
        plain = (tmp_path / "README.md").as_uri()
        editor.open(plain, "# Readme\n\nSome text.\n")
        assert await actions_at(client, plain, 2) == []
        python = (tmp_path / "chat.py").as_uri()
        editor.open(python, "## You\n\nhello\n", language="python")
        assert send_action(await actions_at(client, python, 2)) is None
        empty = (tmp_path / "empty.oropendola.md").as_uri()
        editor.open(empty, "## You\n\n\n")
        assert send_action(await actions_at(client, empty, 1)) is None
        with pytest.raises(JsonRpcException) as refused:
            await execute(client, types.Command(title="", command=SEND,
                                                arguments=[{"uri": empty}]))
        assert "## You" in refused.value.message
        # Not signed in: a clear error, and the document is left as it was.
        editor.open(named.replace("scratch", "other"), "## You\n\nhi\n")
        with pytest.raises(JsonRpcException) as signed_out:
            await execute(client, types.Command(
                title="", command=SEND, arguments=[{"uri": named.replace("scratch", "other")}]))
        assert "Not signed in" in signed_out.value.message
        await asyncio.sleep(0.3)
        assert editor.text(named.replace("scratch", "other")) == "## You\n\nhi\n"
