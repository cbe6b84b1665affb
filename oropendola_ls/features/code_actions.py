"""Code actions: the one ``textDocument/codeAction`` handler, and the assistant's own actions.

pygls allows one handler per method, so every feature that offers code actions appends a
provider to ``server.code_action_providers`` (a quick, synchronous callable that never calls
the backend); `list_actions` joins their answers in order and drops those the request's
``context.only`` excludes.

The assistant's actions, on a non-empty selection or where the request carries diagnostics
(then on the whole lines they cover):

==========================  ===================  ============================================
title                       kind                 result
==========================  ===================  ============================================
Oropendola: Explain         ``refactor``         the answer, streamed as ``$/progress``, opened
                                                 as a Markdown document
Oropendola: Fix             ``quickfix``         the selection replaced (only with diagnostics,
                                                 which it carries)
Oropendola: Improve         ``refactor.rewrite`` the selection replaced
Oropendola: Document        ``refactor.rewrite`` the selection replaced
Oropendola: Generate tests  ``refactor``         a new ``tests/test_<module>.py``
==========================  ===================  ============================================

``source`` kinds are avoided: VS Code shows them only in its "Source Action…" menu, not under
the light bulb; Neovim and Helix list every kind. Listing makes no backend call. The backend is
asked when an action is chosen: through ``codeAction/resolve`` (the action carries ``data``
``{uri, range, action, version}``) when the client resolves ``edit`` and keeps ``data``, else
through the command ``oropendola.codeAction`` with the same object (plus ``diagnostics``),
which applies the edit with ``workspace/applyEdit``. Explain, and Generate tests for a client
that cannot create files, are always that command: they show a document rather than edit.

An edit replaces exactly the range the action was offered for, in the document version it was
offered for: a document that changed since is refused, as is any target outside the workspace
folders, a selection whose sent text had secrets redacted or was cut (the answer could not
stand for it), and a file that may not be sent at all. An answer without a code block is shown
like an explanation, and nothing is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import default_converter
from pygls.workspace import TextDocument

from oropendola_ls import paths
from oropendola_ls.answer_edits import (
    first_free,
    replacement_block,
    replacement_text,
    suggested_test_path,
)
from oropendola_ls.backend.errors import BackendError
from oropendola_ls.client_support import ClientSupport
from oropendola_ls.server import OropendolaServer, ServerNotReadyError

from .progress import WorkDone
from .shell import CONFIRMATION_CODE
from .workspace import uri_to_path

log = logging.getLogger(__name__)

COMMAND = "oropendola.codeAction"
CHAT_DOCUMENT_SUFFIX = ".oropendola.md"
MESSAGE_PREVIEW_CHARS = 1000
CONVERTER = default_converter()  # type: ignore[no-untyped-call]

ActionName = Literal["explain", "fix", "improve", "document", "tests"]


@attrs.frozen
class ActionSpec:
    title: str
    kind: types.CodeActionKind
    verb: str
    message: str
    edits: bool


ACTIONS: dict[ActionName, ActionSpec] = {
    "explain": ActionSpec(
        "Oropendola: Explain", types.CodeActionKind.Refactor, "explain",
        "Explain what this code does: what it takes, what it returns, its side effects, and "
        "anything surprising.", edits=False),
    "fix": ActionSpec(
        "Oropendola: Fix", types.CodeActionKind.QuickFix, "fix",
        "Fix the problems in this code. Answer with the corrected code in one fenced code "
        "block that replaces the selection exactly, then say briefly what changed.", edits=True),
    "improve": ActionSpec(
        "Oropendola: Improve", types.CodeActionKind.RefactorRewrite, "improve",
        "Improve this code without changing what it does. Answer with the improved code in one "
        "fenced code block that replaces the selection exactly, then list the changes.",
        edits=True),
    "document": ActionSpec(
        "Oropendola: Document", types.CodeActionKind.RefactorRewrite, "document",
        "Document this code (docstrings or doc comments in the language's usual style) without "
        "changing it. Answer with the documented code in one fenced code block that replaces "
        "the selection exactly.", edits=True),
    "tests": ActionSpec(
        "Oropendola: Generate tests", types.CodeActionKind.Refactor, "write tests for",
        "Write unit tests for this code as one complete test file in a fenced code block, and "
        "say which path to save it as.", edits=True),
}
ADVERTISED_KINDS = [types.CodeActionKind.QuickFix, types.CodeActionKind.Refactor,
                    types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Empty]
"""Every kind the providers use (shell.py: ``quickfix`` and the empty kind)."""


@attrs.frozen
class Outcome:
    edit: types.WorkspaceEdit | None
    shown: dict[str, Any] = attrs.field(factory=dict)
    """How the answer was shown when there is no edit (`CodeActionsFeature.show_answer`)."""


class Refused(Exception):
    """An action that cannot be carried out; the message says why and what to do."""


@attrs.frozen
class Request:
    """What an offered action stands for: ``{uri, range, action, version, diagnostics?}``."""

    uri: str
    range: types.Range
    action: ActionName
    version: int | None
    diagnostics: tuple[types.Diagnostic, ...] = ()

    @property
    def spec(self) -> ActionSpec:
        return ACTIONS[self.action]


def kind_matches(kind: str | None, only: Sequence[str] | None) -> bool:
    """Whether an action of ``kind`` belongs in a request for ``only`` (kinds are prefixes)."""
    if only is None:
        return True
    kind = kind or ""
    return any(o == "" or kind == o or kind.startswith(o + ".") for o in only)


def list_actions(ls: OropendolaServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The one ``textDocument/codeAction`` handler: every provider's actions, in order."""
    only = params.context.only
    actions: list[types.CodeAction] = []
    for provider in list(ls.code_action_providers):
        try:
            found = provider(params)
        except Exception:
            log.exception("code action provider %r failed", provider)
            continue
        actions.extend(a for a in found if kind_matches(a.kind, only))
    return actions


class CodeActionsFeature:
    def __init__(self, server: OropendolaServer) -> None:
        self.server = server

    def capabilities(self) -> ClientSupport:
        return self.server.client_support

    # -- listing (no backend call) -----------------------------------------------------------

    def offer(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = self.server.workspace.text_documents.get(uri)
        if document is None or uri.endswith(CHAT_DOCUMENT_SUFFIX):
            return []  # a chat document has its own actions (features/chat_document.py)
        # A command waiting for confirmation has its own actions (features/shell.py): there is
        # nothing to fix in it.
        diagnostics = [d for d in params.context.diagnostics if d.code != CONFIRMATION_CODE]
        where = params.range
        if where.start == where.end:
            if not diagnostics:
                return []
            where = _lines_of(document, diagnostics)
        capabilities = self.capabilities()
        place = {"start": {"line": where.start.line, "character": where.start.character},
                 "end": {"line": where.end.line, "character": where.end.character}}
        actions = []
        for name, spec in ACTIONS.items():
            if name == "fix" and not diagnostics:
                continue
            payload: dict[str, Any] = {"uri": uri, "range": place, "action": name,
                                       "version": document.version}
            carried = diagnostics if name == "fix" else None
            if carried:
                payload["diagnostics"] = CONVERTER.unstructure(carried)
            resolvable = capabilities.resolve_edit and spec.edits and (
                name != "tests" or capabilities.create_files)
            if resolvable:
                actions.append(types.CodeAction(title=spec.title, kind=spec.kind,
                                                diagnostics=carried, data=payload))
            else:
                actions.append(types.CodeAction(
                    title=spec.title, kind=spec.kind, diagnostics=carried,
                    command=types.Command(title=spec.title, command=COMMAND,
                                          arguments=[payload])))
        return actions

    # -- choosing ------------------------------------------------------------------------------

    async def resolve(self, action: types.CodeAction) -> types.CodeAction:
        """``codeAction/resolve``: the action with its edit (or, for prose, shown and no edit)."""
        if not isinstance(action.data, Mapping) or "action" not in action.data:
            return action  # not one of ours (a command-only action): nothing to add
        request = self._request(types.CODE_ACTION_RESOLVE, action.data, action.diagnostics)
        try:
            outcome = await self._outcome(request)
        except Refused as exc:
            raise self._refusal(str(exc)) from None
        return attrs.evolve(action, edit=outcome.edit) if outcome.edit is not None else action

    async def run(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """``oropendola.codeAction``: compute the edit and apply it, or show the answer."""
        if len(args) != 1 or not isinstance(args[0], Mapping):
            raise JsonRpcInvalidParams(
                f"{COMMAND}: expected one argument {{uri, range, action, version}}")
        request = self._request(COMMAND, args[0], None)
        try:
            outcome = await self._outcome(request, applying=True)
            edit = outcome.edit
            if edit is None:
                return {"action": request.action, "applied": False, **outcome.shown}
            if request.action != "tests":
                self._check_version(request)
            result = await self.server.workspace_apply_edit_async(
                types.ApplyWorkspaceEditParams(edit=edit, label=request.spec.title))
            if not result.applied:
                reason = result.failure_reason or "no reason given"
                raise Refused(f"{request.spec.title}: the editor did not apply the edit "
                              f"({reason}).")
        except Refused as exc:
            raise self._refusal(str(exc)) from None
        return {"action": request.action, "applied": True, "uri": _edited_uri(edit)}

    async def _outcome(self, request: Request, *, applying: bool = False) -> Outcome:
        """The edit for ``request``, or how its answer was shown instead."""
        capabilities = self.capabilities()
        spec = request.spec
        if not spec.edits:
            answer = await self._ask(request)
            return Outcome(None, await self.show_answer(request, answer))
        if request.action == "tests":
            folder = self._check_target(request, creating=True)
            answer = await self._ask(request)
            if not capabilities.create_files or (applying and not capabilities.apply_edit):
                return Outcome(None, await self.show_answer(request, answer, note=(
                    "Your editor cannot create files through the language server (it does not "
                    "declare `workspace.workspaceEdit.resourceOperations` \"create\"): save the "
                    "code below as "
                    f"`{suggested_test_path(answer, self._relative(request, folder))}`.")))
            edit = self._test_file_edit(request, folder, answer)
            if edit is None:
                return Outcome(None, await self.show_answer(request, answer, note=(
                    "The answer has no code block to save as a test file: nothing was "
                    "created.")))
            return Outcome(edit)
        self._check_target(request)
        document = self._check_version(request)
        selection = document.text_in_client_range(request.range)
        if not selection.strip():
            raise Refused(f"{spec.title}: the selection is empty; select the code first.")
        context = self._context(request)
        _check_sent(spec, context, selection)
        answer = await self._ask(request, context)
        if applying and not capabilities.apply_edit:
            return Outcome(None, await self.show_answer(request, answer, note=(
                "Your editor does not accept edits from the language server "
                "(`workspace.applyEdit`): copy the code below into place.")))
        document = self._check_version(request)  # it may have changed while the backend thought
        start = document.position_from_client_units(request.range.start)
        line = document.lines[start.line] if start.line < len(document.lines) else ""
        new_text = replacement_text(answer, selection, document.language_id,
                                    line[: start.character])
        if new_text is None:
            return Outcome(None, await self.show_answer(request, answer, note=(
                "The answer has no code block to put in place of the selection: nothing was "
                "changed.")))
        return Outcome(self._replace_edit(request, new_text))

    # -- the backend -----------------------------------------------------------------------------

    def _context(self, request: Request) -> dict[str, Any]:
        from .chat import context_for

        return context_for(self.server, request.uri, request.range, action=request.action,
                           diagnostics=request.diagnostics)

    async def _ask(self, request: Request, context: dict[str, Any] | None = None) -> str:
        from .chat import ask

        spec = request.spec
        if context is None:
            context = self._context(request)
        message = spec.message
        if request.diagnostics:
            listed = "; ".join(f"line {d.range.start.line + 1}: {d.message}"
                               for d in request.diagnostics[:20])
            message += f" The problems reported: {listed}"
        progress = WorkDone(self.server, spec.title, cancellable=True, message="Thinking…")
        outcome = "Cancelled"
        try:
            answer = await ask(self.server, message=message, context=context, progress=progress)
            outcome = "Done"
        except BackendError as exc:
            outcome = f"Failed: {exc.message}"
            raise Refused(f"Oropendola could not {spec.verb} the code: {exc.message}") from exc
        except ServerNotReadyError as exc:
            outcome = "Failed"
            raise Refused(str(exc)) from exc
        finally:
            progress.end(outcome)
            await progress.ready()
        return answer.content

    # -- checks --------------------------------------------------------------------------------

    def _request(self, where: str, raw: Mapping[str, Any],
                 diagnostics: Sequence[types.Diagnostic] | None) -> Request:
        uri, action, version = raw.get("uri"), raw.get("action"), raw.get("version")
        if not isinstance(uri, str) or not uri:
            raise JsonRpcInvalidParams(f"{where}: 'uri' must be a string")
        if action not in ACTIONS:
            raise JsonRpcInvalidParams(
                f"{where}: 'action' must be one of {', '.join(ACTIONS)}, not {action!r}")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise JsonRpcInvalidParams(f"{where}: 'version' must be a number or null")
        try:
            place: types.Range = CONVERTER.structure(raw.get("range"), types.Range)
            carried = diagnostics if diagnostics else tuple(CONVERTER.structure(
                raw.get("diagnostics") or [], list[types.Diagnostic]))
        except Exception as exc:
            raise JsonRpcInvalidParams(
                f"{where}: 'range' (and 'diagnostics') must be LSP ranges (diagnostics)") from exc
        return Request(uri, place, action, version, tuple(carried))

    def _check_version(self, request: Request) -> TextDocument:
        title = request.spec.title
        document: TextDocument | None = self.server.workspace.text_documents.get(request.uri)
        if document is None:
            raise Refused(f"{title}: the document was closed since the action was offered; "
                          "open it and choose the action again.")
        if request.version is not None and document.version != request.version:
            raise Refused(
                f"{title}: the document changed since the action was offered (version "
                f"{request.version}, now {document.version}); nothing was changed: choose the "
                "action again.")
        return document

    def _check_target(self, request: Request, *, creating: bool = False) -> Path:
        """The workspace folder holding the request's document; refused when there is none."""
        title = request.spec.title
        path = uri_to_path(request.uri)
        folder = self._folder_of(path) if path is not None else None
        if folder is None:
            what = "the test file would be created" if creating else "the edit would change"
            raise Refused(
                f"{title}: refused: {what} a file outside the workspace folders "
                f"({request.uri}); Oropendola only edits files inside them.")
        return folder

    def _folder_of(self, path: Path) -> Path | None:
        target = path.resolve()
        best: Path | None = None
        for folder in self._folders():
            folder = folder.resolve()
            if (target == folder or folder in target.parents) and (
                    best is None or len(folder.parts) > len(best.parts)):
                best = folder
        return best

    def _folders(self) -> list[Path]:
        feature = self.server.workspace_feature
        if feature is not None:
            return feature.folders()
        workspace = self.server.workspace
        uris = [f.uri for f in workspace.folders.values()] or (
            [workspace.root_uri] if workspace.root_uri else [])
        return [p for p in (uri_to_path(u) for u in uris) if p is not None and p.is_dir()]

    def _relative(self, request: Request, folder: Path) -> str | None:
        path = uri_to_path(request.uri)
        if path is None:
            return None
        try:
            return path.resolve().relative_to(folder).as_posix()
        except ValueError:
            return path.name

    def _refusal(self, message: str) -> JsonRpcException:
        log.info("%s", message)
        self.server.tell(message, types.MessageType.Error)  # some clients only log errors
        return JsonRpcException(code=types.LSPErrorCodes.RequestFailed, message=message)

    # -- edits ---------------------------------------------------------------------------------

    def _annotation(self, request: Request) -> tuple[str | None,
                                                     dict[str, types.ChangeAnnotation] | None]:
        if not self.capabilities().change_annotations:
            return None, None
        name = f"oropendola.{request.action}"
        return name, {name: types.ChangeAnnotation(
            label=request.spec.title, needs_confirmation=True,
            description="Written by the Oropendola assistant: review it before it is applied.")}

    def _replace_edit(self, request: Request, new_text: str) -> types.WorkspaceEdit:
        if not self.capabilities().document_changes:
            # no versioned edits: the version was checked just before, on the server
            return types.WorkspaceEdit(changes={request.uri: [
                types.TextEdit(range=request.range, new_text=new_text)]})
        annotation, annotations = self._annotation(request)
        edit: types.TextEdit | types.AnnotatedTextEdit = (
            types.AnnotatedTextEdit(range=request.range, new_text=new_text,
                                    annotation_id=annotation)
            if annotation else types.TextEdit(range=request.range, new_text=new_text))
        return types.WorkspaceEdit(
            document_changes=[types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=request.uri, version=request.version),
                edits=[edit])],
            change_annotations=annotations)

    def _test_file_edit(self, request: Request, folder: Path, answer: str
                        ) -> types.WorkspaceEdit | None:
        language = None
        document = self.server.workspace.text_documents.get(request.uri)
        if document is not None:
            language = document.language_id
        block = replacement_block(answer, language)
        if block is None:
            return None
        wanted = suggested_test_path(answer, self._relative(request, folder))
        open_paths = {uri_to_path(uri) for uri in self.server.workspace.text_documents}

        def taken(relative: str) -> bool:
            target = folder / relative
            return target.exists() or target in open_paths

        relative = first_free(wanted, taken)
        if relative is None:
            raise Refused(f"{request.spec.title}: {wanted} and its numbered variants exist.")
        target = (folder / relative).resolve()
        if folder not in target.parents:
            raise Refused(f"{request.spec.title}: refused: {relative} lies outside the "
                          "workspace folders.")
        uri = target.as_uri()
        annotation, annotations = self._annotation(request)
        code = block.code.rstrip("\n") + "\n"
        insert = types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
        edit: types.TextEdit | types.AnnotatedTextEdit = (
            types.AnnotatedTextEdit(range=insert, new_text=code, annotation_id=annotation)
            if annotation else types.TextEdit(range=insert, new_text=code))
        return types.WorkspaceEdit(
            document_changes=[
                types.CreateFile(uri=uri, options=types.CreateFileOptions(
                    overwrite=False, ignore_if_exists=False), annotation_id=annotation),
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=None),
                    edits=[edit]),
            ],
            change_annotations=annotations)

    # -- showing an answer -----------------------------------------------------------------------

    async def show_answer(self, request: Request, answer: str, *, note: str | None = None
                          ) -> dict[str, Any]:
        """Open ``answer`` as a Markdown document; else append it to an open chat document;
        else show its start as a message. The answer is kept in the state directory."""
        text = (f"> {note}\n\n" if note else "") + answer
        if not text.endswith("\n"):
            text += "\n"
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = paths.state_dir() / "answers" / f"{stamp}-{request.action}.md"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            log.warning("could not keep the answer in %s: %s", target, exc)
        capabilities = self.capabilities()
        if capabilities.show_document and target.exists():
            try:
                shown = await self.server.window_show_document_async(
                    types.ShowDocumentParams(uri=target.as_uri(), take_focus=True))
            except Exception as exc:  # an error reply: fall back to the other ways
                log.info("window/showDocument failed: %s", exc)
            else:
                if shown is not None and shown.success:
                    return {"shown": "document", "answerUri": target.as_uri()}
        if capabilities.apply_edit and await self._append_to_chat_document(request, text):
            return {"shown": "chatDocument", "answerUri": target.as_uri()}
        preview = text if len(text) <= MESSAGE_PREVIEW_CHARS else (
            text[:MESSAGE_PREVIEW_CHARS].rstrip() + " …")
        self.server.tell(f"{request.spec.title}:\n{preview}\n\n(The whole answer: {target})")
        log.info("%s: answer kept in %s", request.spec.title, target)
        return {"shown": "message", "answerUri": target.as_uri()}

    async def _append_to_chat_document(self, request: Request, text: str) -> bool:
        chat = next((d for uri, d in self.server.workspace.text_documents.items()
                     if uri.endswith(CHAT_DOCUMENT_SUFFIX) and (path := uri_to_path(uri))
                     and self._folder_of(path) is not None), None)
        if chat is None:
            return False
        lines = chat.lines
        if not lines:
            end = types.Position(0, 0)
        elif lines[-1].endswith(("\n", "\r")):
            end = types.Position(len(lines), 0)
        else:
            end = types.Position(len(lines) - 1, chat.position_codec.client_num_units(lines[-1]))
        where = PurePosixPath(uri_to_path(request.uri) or request.uri).name
        insert = (f"\n\n## {request.spec.title} ({where}, line "
                  f"{request.range.start.line + 1})\n\n{text}")
        edit = types.TextEdit(range=types.Range(start=end, end=end), new_text=insert)
        workspace_edit = (
            types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(
                    uri=chat.uri, version=chat.version), edits=[edit])])
            if self.capabilities().document_changes
            else types.WorkspaceEdit(changes={chat.uri: [edit]}))
        try:
            result = await self.server.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(
                edit=workspace_edit, label=request.spec.title))
        except Exception as exc:
            log.info("could not append the answer to %s: %s", chat.uri, exc)
            return False
        return bool(result.applied)


def _check_sent(spec: ActionSpec, context: Mapping[str, Any], selection: str) -> None:
    """Refuse an edit whose answer could not stand for the selection as it is."""
    active = context.get("activeFile")
    active = active if isinstance(active, Mapping) else {}
    if active.get("withheld"):
        raise Refused(f"{spec.title}: this file holds secrets, so its text is not sent to the "
                      "backend; nothing was changed.")
    if active.get("selectedText") != selection:
        raise Refused(
            f"{spec.title}: the selection was not sent as it is (secret-looking text was "
            "redacted, or it is too long), so an answer could not replace it safely; nothing "
            "was changed. Select less, or remove the secrets first.")


def _lines_of(document: TextDocument, diagnostics: Sequence[types.Diagnostic]) -> types.Range:
    """The whole lines the diagnostics cover (with the last one's line break, if any)."""
    first = min(d.range.start.line for d in diagnostics)
    last = max(d.range.end.line - (1 if d.range.end.character == 0
                                   and d.range.end.line > d.range.start.line else 0)
               for d in diagnostics)
    lines = document.lines
    last = max(first, min(last, len(lines) - 1))
    if last + 1 < len(lines):
        end = types.Position(last + 1, 0)
    elif lines:
        text = lines[last].rstrip("\r\n")
        end = types.Position(last, document.position_codec.client_num_units(text))
    else:
        end = types.Position(0, 0)
    return types.Range(start=types.Position(first, 0), end=end)


def _edited_uri(edit: types.WorkspaceEdit) -> str | None:
    for change in edit.document_changes or ():
        if isinstance(change, types.TextDocumentEdit):
            return change.text_document.uri
    return next(iter(edit.changes or {}), None)


def register(server: OropendolaServer) -> CodeActionsFeature:
    feature = CodeActionsFeature(server)
    server.code_action_providers.append(feature.offer)

    server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=ADVERTISED_KINDS, resolve_provider=True),
    )(list_actions)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve_action(ls: OropendolaServer, params: types.CodeAction
                             ) -> types.CodeAction:
        return await feature.resolve(params)

    @server.command(COMMAND)
    async def run_action(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
        ls.protocol.bind_to_request()
        return await feature.run(args)

    return feature
