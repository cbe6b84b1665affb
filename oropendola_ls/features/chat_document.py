"""The chat document: chat in any editor through code actions and ``workspace/applyEdit``.

For Helix and every client without custom requests (DESIGN §Standard-LSP paths). A chat
document is a Markdown file (format in `oropendola_ls.chat_document`):

- a file whose name ends in ``.oropendola.md``;
- or any other open Markdown document (``languageId == "markdown"``) that has a ``## You``
  heading: the user "names" a file a chat by writing that heading in it.

Code actions (kind ``""``, listed as shell.py's are, with no backend call):

- "Send to Oropendola", when the cursor or selection touches the last ``## You`` section and
  that section has a message and no answer yet: command `SEND` ``[{uri}]``;
- "Run: `<command>`" for each command of a ``sh``/``bash``/``shell``/``console`` block of an
  answer, when the cursor is in the block or the selection meets it: command
  ``oropendola.runShellCommand`` ``[{command, uri, range}]``, so the gate decides.

`SEND` writes ``## Oropendola`` at once, streams the answer in under it (edits coalesced, at
most one every `FLUSH_INTERVAL`), then the final text from the HTTP answer (the source of truth)
and a new ``## You`` heading. Each edit is a `TextDocumentEdit` against the document's current
version. Where to insert is worked out afresh from the document's text before every edit: the
answer is the last place where ``## Oropendola`` and a blank line are followed by exactly the
text written so far, so whatever the user types elsewhere (above, or below the answer) is kept.
A refused edit (the user typed at that instant) is rebuilt from the new text and retried; after
an applied edit the next one waits (bounded) for the editor's didChange, so it is built from
text that includes it. Text that still cannot be written is appended at the document's end, or
shown with window/showMessage. The conversation id is kept per document, in memory and in the
document as ``<!-- oropendola:conversation=<id> -->`` at the end of the preamble, so a reopened
document continues its conversation.

Cancel (``$/cancelRequest`` of the command, or the progress's cancel button) keeps the partial
answer and adds ``_(cancelled)_`` and the next ``## You``; a cancel or failure before any text
arrived takes the empty heading back out, so the question can be sent again.

Limitation: edits are versioned only for clients that declare
``workspace.workspaceEdit.documentChanges`` (VS Code, Helix). Others (Neovim declares none) get
plain ``changes``, which an editor applies even when the user typed a line break above the answer
in the instant before it arrives; the text is then placed a line off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.workspace import TextDocument

from oropendola_ls.backend.errors import BackendError
from oropendola_ls.chat_document import (
    ANSWER_HEADER,
    ChatDocument,
    Place,
    answer_closing,
    answer_opening,
    conversation_edit,
    find_answer_end,
    is_chat_path,
    last_answer_end,
    normalise,
    place_at,
    split_lines,
)
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.chat import ask, context_for
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

from .progress import WorkDone

log = logging.getLogger(__name__)

SEND = "oropendola.sendChatDocument"
RUN_SHELL = "oropendola.runShellCommand"
SEND_TITLE = "Send to Oropendola"
EDIT_LABEL = "Oropendola"
FLUSH_INTERVAL = 0.05
"""Seconds between two streamed edits: deltas that arrive meanwhile go out joined."""
APPLY_ATTEMPTS = 5
RETRY_DELAY = 0.05
SETTLE_TIMEOUT = 2.0
"""Seconds to wait for the editor's didChange after it applied one of our edits."""
APPLY_TIMEOUT = 30.0
"""Seconds to wait for the editor's answer to one workspace/applyEdit."""

Edit = tuple[Place, Place, str]


@attrs.define
class SendArgs:
    uri: str


@attrs.frozen
class Ending:
    """How an answer ends: its full text, a cancel, or a failure."""

    content: str | None = None
    conversation_id: str | None = None
    cancelled: bool = False
    failure: str | None = None


class RefusedError(Exception):
    """The editor did not apply an edit, after every retry."""


class AnswerWriter:
    """Writes one answer into a chat document, in order, without losing any of it."""

    def __init__(self, server: OropendolaServer, uri: str, progress: WorkDone) -> None:
        self.server = server
        self.uri = uri
        self.progress = progress
        self.opening = ANSWER_HEADER
        self.written = ""
        """The answer's text now in the document, under the header."""
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._ending: Ending | None = None
        self._applied_version: int | None = None
        self._streaming = False
        self.task: asyncio.Task[Any] | None = None

    # -- the caller's side -----------------------------------------------------------------------

    async def open(self) -> None:
        """Write the ``## Oropendola`` heading under the question; then start streaming."""
        def build(text: str) -> list[Edit]:
            self.opening = answer_opening(text)
            end = _end_of(text)
            return [(end, end, self.opening)]

        if not await self._apply(build):
            raise JsonRpcException(
                code=types.LSPErrorCodes.RequestFailed,
                message="The editor did not accept the answer's heading "
                        "(workspace/applyEdit was refused); nothing was sent")
        self.task = self.server.run_task(self._run(), f"chat-document {self.uri}")

    def feed(self, text: str) -> None:
        if not self._streaming:
            self._streaming = True
            self.progress.report("Writing the answer…")
        self._pending.append(text)
        self._wake.set()

    async def end(self, ending: Ending) -> None:
        """Finish with ``ending`` and wait until it is written (even if the caller is
        cancelled meanwhile: the writing goes on)."""
        self._ending = ending
        self._wake.set()
        if self.task is not None:
            await asyncio.shield(self.task)

    # -- the writing task ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                await self._write_pending()
            if self._ending is not None:
                break
            await asyncio.sleep(FLUSH_INTERVAL)
        await self._write_ending(self._ending)

    async def _write_pending(self) -> None:
        count = len(self._pending)
        chunk = "".join(self._pending[:count])
        if await self._apply(lambda text: [self._at_answer_end(text, chunk)]):
            del self._pending[:count]
            self.written += chunk
        else:
            log.info("%s: a streamed edit was refused %d times; kept for the next one",
                     self.uri, APPLY_ATTEMPTS)

    async def _write_ending(self, ending: Ending) -> None:
        remaining = "".join(self._pending)
        self._pending.clear()
        try:
            if ending.content is not None:
                await self._write_final(ending.content, ending.conversation_id)
            elif not self.written and not remaining:
                await self._withdraw(ending)
            else:
                note = None if ending.cancelled else f"_(failed: {ending.failure})_"
                closing = answer_closing(self.written + remaining, cancelled=ending.cancelled,
                                         note=note)
                await self._finish(remaining, closing, None)
        except RefusedError:
            pass  # _finish already showed the text

    async def _write_final(self, content: str, conversation_id: str | None) -> None:
        closing = answer_closing(content)
        if content.startswith(self.written):
            await self._finish(content[len(self.written):], closing, conversation_id)
            return
        # The stream and the HTTP answer differ (a gap in the realtime channel): the HTTP
        # answer wins, replacing what was streamed.
        written = self.written

        def build(text: str) -> list[Edit]:
            end = find_answer_end(text, written)
            if end is None:
                where = self._fallback_end(text)
                return [(where, where, "\n\n" + content + closing), *_mark(text, conversation_id)]
            norm = normalise(text)
            start = place_at(norm, end - len(normalise(written)))
            return [(start, place_at(norm, end), content + closing), *_mark(text, conversation_id)]

        if not await self._apply(build):
            await self._last_resort(content + closing)
        else:
            self.written = content

    async def _finish(self, rest: str, closing: str, conversation_id: str | None) -> None:
        """Append ``rest`` of the answer and ``closing`` where the answer ends."""
        def build(text: str) -> list[Edit]:
            return [self._at_answer_end(text, rest + closing), *_mark(text, conversation_id)]

        if await self._apply(build):
            self.written += rest
            return
        await self._last_resort(rest + closing)

    async def _last_resort(self, text: str) -> None:
        """The answer's end could not be edited: append at the document's end, else show it."""
        log.warning("%s: the answer could not be written in place; appending it", self.uri)

        def build(current: str) -> list[Edit]:
            end = _end_of(current)
            return [(end, end, "\n\n" + text.lstrip("\n"))]

        if await self._apply(build):
            return
        self.server.tell(f"Oropendola could not write into {self.uri}; the rest of the "
                         f"answer:\n\n{text}", types.MessageType.Warning)
        raise RefusedError

    async def _withdraw(self, ending: Ending) -> None:
        """Nothing was answered: take the heading back out, so the question can be sent again."""
        opening = self.opening

        def build(text: str) -> list[Edit]:
            end = find_answer_end(text, "")
            if end is None:
                return []
            norm = normalise(text)
            start = end - len(opening) if norm[:end].endswith(opening) else \
                end - len(ANSWER_HEADER)
            return [(place_at(norm, start), place_at(norm, end), "")]

        if not await self._apply(build):
            log.info("%s: the empty answer heading could not be removed (%s)", self.uri,
                     "cancelled" if ending.cancelled else ending.failure)

    # -- edits -----------------------------------------------------------------------------------

    def _at_answer_end(self, text: str, insert: str) -> Edit:
        end = find_answer_end(text, self.written)
        where = place_at(normalise(text), end) if end is not None else self._fallback_end(text)
        return where, where, insert

    def _fallback_end(self, text: str) -> Place:
        """The user edited inside the answer: its end is the last answer section's end."""
        log.debug("%s: the answer was edited; writing at the end of its section", self.uri)
        return last_answer_end(ChatDocument.parse(text)) or _end_of(text)

    async def _apply(self, build: Callable[[str], list[Edit]]) -> bool:
        """Apply the edits ``build`` makes from the document's current text; retry when the
        editor refuses (its version moved on); False once every attempt was refused."""
        for attempt in range(APPLY_ATTEMPTS):
            await self._settle()
            document = self.server.workspace.text_documents.get(self.uri)
            if document is None:
                log.info("%s was closed: the answer is no longer written into it", self.uri)
                return False
            text, version = document.source, document.version
            edits = build(text)
            if not edits:
                return True
            try:
                result = await asyncio.wait_for(self.server.workspace_apply_edit_async(
                    types.ApplyWorkspaceEditParams(
                        edit=self._workspace_edit(document, text, version, edits),
                        label=EDIT_LABEL)), APPLY_TIMEOUT)
            except Exception as exc:  # an error reply, or none: the editor did not apply it
                log.info("%s: workspace/applyEdit failed: %s", self.uri, exc)
                result = None
            if result is not None and result.applied:
                self._applied_version = version
                return True
            log.debug("%s: edit refused (%s); attempt %d", self.uri,
                      result.failure_reason if result is not None else "error", attempt + 1)
            await asyncio.sleep(RETRY_DELAY * (attempt + 1))
        return False

    async def _settle(self) -> None:
        """Wait until the editor's didChange for our last edit has arrived (bounded)."""
        version, self._applied_version = self._applied_version, None
        if version is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT
        while self.server.workspace.get_text_document(self.uri).version == version:
            if loop.time() > deadline:
                log.info("%s: no didChange after our edit; going on", self.uri)
                return
            await asyncio.sleep(0.005)

    def _workspace_edit(self, document: TextDocument, text: str, version: int | None,
                        edits: list[Edit]) -> types.WorkspaceEdit:
        lines = split_lines(text)
        text_edits = [types.TextEdit(range=types.Range(start=_position(document, lines, start),
                                                       end=_position(document, lines, end)),
                                     new_text=new_text)
                      for start, end, new_text in edits]
        if self.server.client_support.document_changes:
            identifier = types.OptionalVersionedTextDocumentIdentifier(uri=self.uri,
                                                                       version=version)
            return types.WorkspaceEdit(document_changes=[
                types.TextDocumentEdit(text_document=identifier, edits=list(text_edits))])
        return types.WorkspaceEdit(changes={self.uri: text_edits})


def _end_of(text: str) -> Place:
    norm = normalise(text)
    return place_at(norm, len(norm))


def _mark(text: str, conversation_id: str | None) -> list[Edit]:
    """The edit that records the conversation id in the document, if it needs one."""
    if not conversation_id:
        return []
    edit = conversation_edit(ChatDocument.parse(text), conversation_id)
    return [edit] if edit is not None else []


def _position(document: TextDocument, lines: list[str], place: Place) -> types.Position:
    line = lines[place.line] if place.line < len(lines) else ""
    return types.Position(line=place.line, character=document.position_codec.client_num_units(
        line[:place.character]))


def _short(command: str, limit: int = 60) -> str:
    """A command for a title: one line, control characters escaped, clipped."""
    visible = command if command.isprintable() else \
        command.encode("unicode_escape").decode("ascii")
    return visible if len(visible) <= limit else visible[: limit - 1] + "…"


class ChatDocumentFeature:
    def __init__(self, server: OropendolaServer) -> None:
        self.server = server
        self.conversations: dict[str, str] = {}
        """The conversation of each chat document this session (also written into it)."""
        self.answering: set[str] = set()

    # -- listing (no backend call) ---------------------------------------------------------------

    def chat_document(self, uri: str) -> tuple[TextDocument, ChatDocument] | None:
        """The open document at ``uri``, parsed, if it is a chat document."""
        document = self.server.workspace.text_documents.get(uri)
        if document is None:
            return None
        named = is_chat_path(unquote(urlparse(uri).path))
        if not named and document.language_id != "markdown":
            return None
        parsed = ChatDocument.parse(document.source)
        if not named and not any(s.role == "you" for s in parsed.sections):
            return None
        return document, parsed

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        found = self.chat_document(uri)
        if found is None:
            return []
        document, parsed = found
        first, last = sorted((params.range.start.line, params.range.end.line))
        actions: list[types.CodeAction] = []
        question = parsed.last_question()
        if (question is not None and question.text and not question.answered
                and uri not in self.answering
                and question.section.heading_line <= last
                and first < max(question.section.end_line, question.section.heading_line + 1)):
            actions.append(types.CodeAction(
                title=SEND_TITLE, kind=types.CodeActionKind.Empty,
                command=types.Command(title=SEND_TITLE, command=SEND,
                                      arguments=[{"uri": uri}])))
        lines = list(parsed.lines)
        for command in parsed.shell_commands():
            block = command.block
            if not (block.start_line <= last and first <= block.end_line):
                continue
            where = {
                "start": {"line": command.start_line, "character": 0},
                "end": {"line": command.end_line, "character": document.position_codec
                        .client_num_units(lines[command.end_line])},
            }
            actions.append(types.CodeAction(
                title=f"Run: `{_short(command.command)}`", kind=types.CodeActionKind.Empty,
                command=types.Command(
                    title="Run in the shell", command=RUN_SHELL,
                    arguments=[{"command": command.command, "uri": uri, "range": where}])))
        return actions

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) != 1:
            raise JsonRpcInvalidParams(f"{SEND}: expected one argument {{uri}}")
        uri = parse_params(SEND, args[0], SendArgs).uri
        found = self.chat_document(uri)
        if found is None:
            raise JsonRpcInvalidParams(
                f"{SEND}: {uri} is not an open chat document (a `*.oropendola.md` file, or "
                "Markdown with a `## You` heading)")
        _, parsed = found
        question = parsed.last_question()
        if question is None or not question.text:
            raise _failed("Write your message under a `## You` heading at the end of the "
                          "document, then send it")
        if question.answered:
            raise _failed("The last `## You` section already has an answer: write your next "
                          "message under a new `## You` heading at the end")
        if uri in self.answering:
            raise _failed("Oropendola is already answering in this document")
        if not self.server.client_support.apply_edit:
            raise _failed("This editor does not accept edits from the server "
                          "(workspace.applyEdit): use the oropendola/chat request instead")
        conversation = (parsed.conversation.id if parsed.conversation is not None
                        else self.conversations.get(uri))
        self.answering.add(uri)
        try:
            return await self._answer(uri, question.text, conversation)
        finally:
            self.answering.discard(uri)

    async def _answer(self, uri: str, message: str, conversation: str | None
                      ) -> dict[str, Any]:
        context = context_for(self.server, uri)
        context.pop("activeFile", None)  # the chat document is not the code being asked about
        progress = WorkDone(self.server, "Oropendola: answering", cancellable=True,
                            message="Thinking…")
        unwatch = progress.on_cancel(asyncio.current_task())
        writer = AnswerWriter(self.server, uri, progress)
        outcome = "Failed"
        try:
            await writer.open()
            try:
                answer = await ask(self.server, message=message, context=context or None,
                                   conversation_id=conversation, on_text=writer.feed)
            except asyncio.CancelledError:
                outcome = "Cancelled"
                await writer.end(Ending(cancelled=True))
                raise
            except BackendError as exc:
                outcome = f"Failed: {exc.message}"
                await writer.end(Ending(failure=exc.message))
                raise
            if answer.conversation_id:
                self.conversations[uri] = answer.conversation_id
            await writer.end(Ending(content=answer.content,
                                    conversation_id=answer.conversation_id))
            outcome = "Done"
            return {"conversationId": answer.conversation_id, "content": answer.content}
        finally:
            unwatch()
            progress.end(outcome)


def _failed(message: str) -> JsonRpcException:
    return JsonRpcException(code=types.LSPErrorCodes.RequestFailed, message=message)


def register(server: OropendolaServer) -> None:
    feature = ChatDocumentFeature(server)

    @backend_errors
    async def answer(args: tuple[Any, ...]) -> dict[str, Any]:
        return await feature.send(args)

    @server.command(SEND)
    async def send_chat_document(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
        ls.protocol.bind_to_request()
        return await answer(args)

    server.code_action_providers.append(feature.code_actions)
