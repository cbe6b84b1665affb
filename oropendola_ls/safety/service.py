"""The one path every shell command takes: gate, ask when needed, run, audit.

`CommandService` is plain asyncio code. The LSP layer gives it a way to ask the user
(`Asker`); whoever proposed the command (the user, the AI in a chat answer, the backend in an
event) goes through `run`, so nothing runs around the gate.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from oropendola_ls.safety.approvals import ApprovalStore
from oropendola_ls.safety.audit import AuditLog, Source
from oropendola_ls.safety.runner import OutputSink, RunResult, run_shell
from oropendola_ls.safety.verdict import GatePolicy, Verdict
from oropendola_ls.settings import Settings

if TYPE_CHECKING:
    from oropendola_ls.safety import CommandValidator

log = logging.getLogger(__name__)


class Choice(enum.Enum):
    EXECUTE = "Execute"
    CANCEL = "Cancel"
    ALWAYS = "Always allow"


Asker = Callable[[Verdict], Awaitable[Choice | None]]
"""Asks the user about a command that needs confirmation; None when the client cannot ask."""

Status = Literal["ran", "blocked", "cancelled", "needs_confirmation"]


@attrs.frozen
class Outcome:
    status: Status
    verdict: Verdict
    result: RunResult | None = None
    approved_prefixes: tuple[str, ...] = ()


class CommandService:
    def __init__(self, settings: Settings, *, approvals: ApprovalStore, audit: AuditLog) -> None:
        self.settings = settings
        self.approvals = approvals
        self.audit = audit
        self._validator: CommandValidator | None = None

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        self._validator = None

    def policy(self) -> GatePolicy:
        return GatePolicy(
            allowed_commands=(*self.settings.allowed_commands, *self.approvals.load()),
            denied_commands=self.settings.denied_commands,
            require_confirmation=self.settings.command_require_confirmation,
            execution_timeout=self.settings.command_execution_timeout,
        )

    def check(self, command: object) -> Verdict:
        """The gate's verdict; executes nothing."""
        if self._validator is None:
            from oropendola_ls.safety import CommandValidator

            self._validator = CommandValidator(self.policy())
        return self._validator.validate(command)

    async def run(
        self,
        command: str,
        *,
        cwd: Path,
        source: Source,
        ask: Asker,
        on_output: OutputSink | None = None,
    ) -> Outcome:
        """Gate ``command``; ask when it needs confirmation; run it if allowed or approved."""
        verdict = self.check(command)
        self.audit.record(
            "proposed",
            command,
            source=source,
            decision=verdict.decision,
            reasons=list(verdict.reasons),
            cwd=str(cwd),
        )
        if verdict.decision == "block":
            self.audit.record("blocked", command, source=source, reasons=list(verdict.reasons))
            return Outcome("blocked", verdict)
        approved: tuple[str, ...] = ()
        if verdict.decision == "confirm":
            choice = await ask(verdict)
            if choice is None:
                return Outcome("needs_confirmation", verdict)
            if choice is Choice.CANCEL:
                self.audit.record("denied", command, source=source)
                return Outcome("cancelled", verdict)
            if choice is Choice.ALWAYS:
                approved = self.always_allow(verdict)
            self.audit.record("approved", command, source=source, always=list(approved) or None)
        return await self._execute(
            command, verdict, cwd=cwd, source=source, on_output=on_output, approved=approved
        )

    async def run_confirmed(
        self, command: str, *, cwd: Path, source: Source, on_output: OutputSink | None = None
    ) -> Outcome:
        """Run a command the user confirmed out of band (the code-action path), once.

        The gate runs again: settings may have changed since it was proposed, and a block
        is never confirmable.
        """
        verdict = self.check(command)
        if verdict.decision == "block":
            self.audit.record("blocked", command, source=source, reasons=list(verdict.reasons))
            return Outcome("blocked", verdict)
        self.audit.record("approved", command, source=source, via="code action")
        return await self._execute(command, verdict, cwd=cwd, source=source, on_output=on_output)

    def always_allow(self, verdict: Verdict) -> tuple[str, ...]:
        """Store the verdict's argv prefixes; none when it offers none (high risk)."""
        stored = tuple(self.approvals.add(prefix) for prefix in verdict.allow_prefixes)
        if stored:
            self._validator = None
            log.info("always allowing %s", ", ".join(stored))
        return stored

    async def _execute(
        self,
        command: str,
        verdict: Verdict,
        *,
        cwd: Path,
        source: Source,
        on_output: OutputSink | None,
        approved: tuple[str, ...] = (),
    ) -> Outcome:
        try:
            result = await run_shell(
                command, cwd=cwd, time_limit=verdict.timeout, on_output=on_output
            )
        except asyncio.CancelledError:
            self.audit.record("cancelled", command, source=source)
            raise
        self.audit.record(
            "executed",
            command,
            source=source,
            exit_code=result.exit_code,
            duration_ms=result.duration_ms,
            timed_out=result.timed_out or None,
        )
        return Outcome("ran", verdict, result, approved)
