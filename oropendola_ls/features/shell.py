"""Shell commands through the gate: ``oropendola.runShellCommand``, ``oropendola/checkCommand``,
and the standard-LSP confirmation path for clients without ``window/showMessageRequest``.

Confirmation: a ``window/showMessageRequest`` (Execute / Cancel / Always allow) is tried with
every client (Emacs and Helix do not declare the capability, and some still answer). An error
reply counts as Cancel; a -32601 reply means the client cannot ask, so the command is parked as
a pending confirmation: a "Confirm: run …" code action plus a diagnostic with the reasons at
the place it was proposed. Running that code action executes the confirmed text once.
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcMethodNotFound,
)
from pygls.uris import to_fs_path

from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

from .progress import WorkDone, can_create_progress

if TYPE_CHECKING:
    from oropendola_ls.safety.service import Choice, CommandService, Outcome
    from oropendola_ls.safety.verdict import Verdict

log = logging.getLogger(__name__)

CHECK_COMMAND = "oropendola/checkCommand"
RUN = "oropendola.runShellCommand"
CONFIRM = "oropendola.confirmShellCommand"
DISMISS = "oropendola.dismissShellCommand"
DIAGNOSTIC_SOURCE = "oropendola"
CONFIRMATION_CODE = "confirm-command"
"""The code of the diagnostic that marks a command waiting for confirmation."""
PROGRESS_INTERVAL = 0.1
SHELL_LANGUAGES = frozenset({"shellscript", "sh", "bash", "zsh", "markdown", "plaintext"})
MAX_SELECTION = 4000


@attrs.define
class CheckParams:
    command: str


@attrs.define
class RunArgs:
    command: str
    cwd: str | None = None
    uri: str | None = None
    range: dict[str, Any] | None = None


@attrs.define
class Pending:
    """A command waiting for the user's confirmation through a code action."""

    id: str
    command: str
    cwd: Path
    verdict: Verdict
    uri: str | None
    range: types.Range


_pending_ids = itertools.count(1)


class ShellFeature:
    def __init__(self, server: OropendolaServer) -> None:
        self.server = server
        self.pending: dict[str, Pending] = {}
        self._service: CommandService | None = None

    # -- services ----------------------------------------------------------------------------

    def service(self) -> CommandService:
        if self._service is None:
            from oropendola_ls.safety.approvals import ApprovalStore
            from oropendola_ls.safety.audit import AuditLog
            from oropendola_ls.safety.service import CommandService

            self._service = CommandService(
                self.server.settings, approvals=ApprovalStore(),
                audit=AuditLog(on_failure=lambda message: self.server.tell(
                    f"Oropendola: {message}", types.MessageType.Warning)))
        elif self._service.settings is not self.server.settings:
            self._service.update_settings(self.server.settings)
        return self._service

    # -- handlers ------------------------------------------------------------------------------

    def check_command(self, params: Any) -> dict[str, Any]:
        p = parse_params(CHECK_COMMAND, params, CheckParams)
        return self.service().check(p.command).to_json()

    async def run_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) != 1:
            raise JsonRpcInvalidParams(f"{RUN}: expected one argument {{command, cwd?}}")
        p = parse_params(RUN, args[0], RunArgs)
        cwd = self._working_directory(p.cwd)
        where = self._place(p.range)
        progress = await self._progress(p.command)
        try:
            outcome = await self.service().run(
                p.command, cwd=cwd, source="user", ask=self._ask,
                on_output=progress.output if progress else None,
            )
        finally:
            if progress:
                progress.end()
        if outcome.status == "needs_confirmation":
            return self._park(p.command, cwd, outcome.verdict, p.uri, where)
        return self._answer(p.command, outcome)

    async def confirm_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        pending = self._take_pending(CONFIRM, args)
        progress = await self._progress(pending.command)
        try:
            outcome = await self.service().run_confirmed(
                pending.command, cwd=pending.cwd, source="user",
                on_output=progress.output if progress else None,
            )
        finally:
            if progress:
                progress.end()
        return self._answer(pending.command, outcome)

    def dismiss_command(self, args: tuple[Any, ...]) -> None:
        pending = self._take_pending(DISMISS, args)
        self.service().audit.record("denied", pending.command, source="user", via="code action")

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        actions = [
            action
            for item in self.pending.values()
            if item.uri in (None, uri)
            for action in _confirmation_actions(item)
        ]
        selection = self._selected_command(uri, params.range)
        if selection:
            actions.append(types.CodeAction(
                title=f"Oropendola: run `{_short(selection)}` in the shell",
                kind=types.CodeActionKind.Empty,
                command=types.Command(
                    title="Run in the shell", command=RUN,
                    arguments=[{"command": selection, "uri": uri,
                                "range": self.server.protocol._converter.unstructure(
                                    params.range)}],
                ),
            ))
        return actions

    # -- running -------------------------------------------------------------------------------

    async def _ask(self, verdict: Verdict) -> Choice | None:
        from oropendola_ls.safety.service import Choice

        choices = [Choice.EXECUTE, Choice.CANCEL] + ([Choice.ALWAYS] if verdict.allow_prefixes
                                                      else [])
        reasons = "; ".join(verdict.reasons) or "it needs confirmation"
        try:
            answer = await self.server.window_show_message_request_async(
                types.ShowMessageRequestParams(
                    type=types.MessageType.Warning,
                    message=f"Run `{_short(verdict.command)}`? {verdict.risk} risk: {reasons}",
                    actions=[types.MessageActionItem(title=c.value) for c in choices],
                )
            )
        except JsonRpcMethodNotFound:
            return None  # the client cannot ask (Helix): use the code-action path
        except Exception as exc:  # any other error reply counts as Cancel
            log.info("confirmation request failed (%s); not running", exc)
            return Choice.CANCEL
        if answer is None:
            return Choice.CANCEL
        return next((c for c in choices if c.value == answer.title), Choice.CANCEL)

    async def _progress(self, command: str) -> CommandProgress | None:
        """``$/progress`` for the command's output, when the client shows server progress."""
        if not can_create_progress(self.server):
            return None
        work = WorkDone(self.server, f"Running {_short(command, 40)}")
        await work.ready()
        return CommandProgress(work)

    def _answer(self, command: str, outcome: Outcome) -> dict[str, Any]:
        verdict = outcome.verdict
        if outcome.status == "blocked":
            reasons = "; ".join(verdict.reasons) or "blocked by policy"
            raise JsonRpcException(
                code=types.LSPErrorCodes.RequestFailed,
                message=f"Blocked `{_short(command)}`: {reasons}",
                data=verdict.to_json(),
            )
        result = outcome.result
        answer: dict[str, Any] = {
            "decision": verdict.decision,
            "exitCode": result.exit_code if result else None,
            "stdout": result.stdout if result else "",
            "stderr": result.stderr if result else "",
            "durationMs": result.duration_ms if result else 0,
            "reasons": list(verdict.reasons),
        }
        if outcome.status == "cancelled":
            answer["cancelled"] = True
        if result is not None and result.timed_out:
            answer["timedOut"] = True
        if result is not None and result.truncated:
            answer["truncated"] = True
        if outcome.approved_prefixes:
            answer["alwaysAllowed"] = list(outcome.approved_prefixes)
        return answer

    # -- the code-action path --------------------------------------------------------------------

    def _park(self, command: str, cwd: Path, verdict: Verdict, uri: str | None,
              where: types.Range) -> dict[str, Any]:
        item = Pending(f"pending-{next(_pending_ids)}", command, cwd, verdict, uri, where)
        self.pending[item.id] = item
        self._publish(uri)
        place = "at the place it was proposed" if uri else "in any file"
        self.server.tell(
            f"`{_short(command)}` needs confirmation ({verdict.risk} risk): use the code action "
            f"\"Confirm: run …\" {place}.",
            types.MessageType.Warning,
        )
        return {"decision": "confirm", "exitCode": None, "stdout": "", "stderr": "",
                "durationMs": 0, "reasons": list(verdict.reasons), "pending": item.id}

    def _take_pending(self, name: str, args: tuple[Any, ...]) -> Pending:
        if len(args) != 1 or not isinstance(args[0], str):
            raise JsonRpcInvalidParams(f"{name}: expected the pending confirmation's id")
        item = self.pending.pop(args[0], None)
        if item is None:
            raise JsonRpcInvalidParams(
                f"{name}: no pending confirmation {args[0]!r} (already run or dismissed)")
        self._publish(item.uri)
        return item

    def _publish(self, uri: str | None) -> None:
        if uri is None:
            return
        diagnostics = [
            types.Diagnostic(
                range=item.range,
                message=f"`{_short(item.command)}` needs confirmation ({item.verdict.risk} risk): "
                        + "; ".join(item.verdict.reasons),
                severity=types.DiagnosticSeverity.Warning,
                source=DIAGNOSTIC_SOURCE,
                code=CONFIRMATION_CODE,
            )
            for item in self.pending.values() if item.uri == uri
        ]
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))

    # -- helpers -------------------------------------------------------------------------------

    def _place(self, raw: dict[str, Any] | None) -> types.Range:
        if raw is None:
            return types.Range(types.Position(0, 0), types.Position(0, 0))
        try:
            place: types.Range = self.server.protocol._converter.structure(raw, types.Range)
        except Exception as exc:
            raise JsonRpcInvalidParams(f"{RUN}: field 'range' is not an LSP range") from exc
        return place

    def _working_directory(self, raw: str | None) -> Path:
        folders = [Path(p).resolve() for p in self._workspace_paths()]
        if not folders:
            raise JsonRpcException(
                code=types.LSPErrorCodes.RequestFailed,
                message="Open a workspace folder first: shell commands run inside one")
        cwd = (folders[0] / raw).resolve() if raw else folders[0]
        if not any(cwd == f or f in cwd.parents for f in folders):
            raise JsonRpcInvalidParams(
                f"{RUN}: cwd {raw!r} is outside the workspace folders; commands run inside one")
        if not cwd.is_dir():
            raise JsonRpcInvalidParams(f"{RUN}: cwd {raw!r} is not a directory")
        return cwd

    def _workspace_paths(self) -> list[str]:
        workspace = self.server.workspace
        paths = [to_fs_path(f.uri) for f in workspace.folders.values()]
        if not paths and workspace.root_path:
            paths = [workspace.root_path]
        return [p for p in paths if p]

    def _selected_command(self, uri: str, where: types.Range) -> str | None:
        if where.start == where.end:
            return None
        document = self.server.workspace.get_text_document(uri)
        if document.language_id not in SHELL_LANGUAGES and not uri.endswith(".oropendola.md"):
            return None
        text = document.text_in_client_range(where).strip()
        # Helix's cursor is a one-character selection: no command is that short.
        return text if 1 < len(text) <= MAX_SELECTION else None


class CommandProgress:
    """A report of the latest output line at most every 100 ms, then the end."""

    def __init__(self, work: WorkDone) -> None:
        self.work = work
        self.tail = ""
        self.last = 0.0

    def output(self, stream: str, text: str) -> None:
        lines = [line for line in (self.tail + text).splitlines() if line.strip()]
        self.tail = lines[-1][:200] if lines else self.tail
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            self.work.report(self.tail)

    def end(self) -> None:
        self.work.end(self.tail)


def _confirmation_actions(item: Pending) -> list[types.CodeAction]:
    reason = item.verdict.reasons[0] if item.verdict.reasons else "needs confirmation"
    return [
        types.CodeAction(
            title=f"Confirm: run `{_short(item.command)}` — {item.verdict.risk} risk: {reason}",
            kind=types.CodeActionKind.QuickFix,
            is_preferred=False,
            command=types.Command(title="Confirm and run", command=CONFIRM, arguments=[item.id]),
        ),
        types.CodeAction(
            title=f"Dismiss: do not run `{_short(item.command)}`",
            kind=types.CodeActionKind.QuickFix,
            command=types.Command(title="Dismiss", command=DISMISS, arguments=[item.id]),
        ),
    ]


def _short(command: str, limit: int = 60) -> str:
    """The command for a title: control characters escaped, one line, clipped."""
    visible = command.encode("unicode_escape").decode("ascii") if not command.isprintable() \
        else command
    return visible if len(visible) <= limit else visible[: limit - 1] + "…"


def register(server: OropendolaServer) -> None:
    feature = ShellFeature(server)

    @server.feature(CHECK_COMMAND)
    def check_command(ls: OropendolaServer, params: Any) -> dict[str, Any]:
        return feature.check_command(params)

    @server.command(RUN)
    async def run_command(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
        ls.protocol.bind_to_request()
        return await feature.run_command(args)

    @server.command(CONFIRM)
    async def confirm_command(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
        ls.protocol.bind_to_request()
        return await feature.confirm_command(args)

    @server.command(DISMISS)
    def dismiss_command(ls: OropendolaServer, *args: Any) -> None:
        feature.dismiss_command(args)

    # the one textDocument/codeAction handler (features/code_actions.py) joins the providers
    server.code_action_providers.append(feature.code_actions)
