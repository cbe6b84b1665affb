"""What the command gate decides, and why: the types every part of the gate shares.

Levels: ``allow`` runs without asking, ``confirm`` asks the user, ``block`` never runs.
Risk levels and scores follow the seed: low 20, medium 50, high 90.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

Decision = Literal["allow", "confirm", "block"]
RiskLevel = Literal["low", "medium", "high"]

DECISION_ORDER: dict[Decision, int] = {"allow": 0, "confirm": 1, "block": 2}
RISK_ORDER: dict[RiskLevel, int] = {"low": 0, "medium": 1, "high": 2}
RISK_SCORES: dict[RiskLevel, int] = {"low": 20, "medium": 50, "high": 90}


@attrs.frozen
class Finding:
    """One reason for a verdict, about one sub-command of the line."""

    rule: str                       # stable id, e.g. "rm-recursive-root", "fetch-to-shell"
    decision: Decision
    risk: RiskLevel
    message: str                    # names the sub-command it is about; says why
    subcommand: str = ""            # the sub-command's text as written (or resolved argv)
    span: tuple[int, int] | None = None  # byte offsets in the original command, when known


@attrs.frozen
class RiskAssessment:
    """The seed's RiskAssessor result."""

    level: RiskLevel
    reason: str
    details: tuple[str, ...] = ()
    score: int = 20


@attrs.frozen
class Verdict:
    """The gate's answer for one command line."""

    command: str
    decision: Decision
    risk: RiskLevel
    score: int                      # 0-100; 20/50/90 for low/medium/high, may be finer
    findings: tuple[Finding, ...] = ()
    timeout: float = 120.0          # seconds this command may run (3x for installs/clones/builds)
    allow_prefixes: tuple[tuple[str, ...], ...] = ()
    """Per sub-command that needs confirmation, the argv prefix "Always allow" would store
    (e.g. ``("npm", "install")``, never a bare program name). Empty when "Always allow" must
    not be offered (any high-risk finding, or nothing to allow)."""

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.message for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """The object of `check-command --json` and `oropendola/checkCommand`."""
        return {
            "command": self.command,
            "decision": self.decision,
            "risk": self.risk,
            "score": self.score,
            "reasons": list(self.reasons),
        }


@attrs.frozen
class GatePolicy:
    """The user's settings that shape decisions (DESIGN.md §Settings)."""

    allowed_commands: tuple[str, ...] = ()   # argv prefixes, shell-split ("npm test")
    denied_commands: tuple[str, ...] = ()    # argv prefixes; a match blocks that sub-command
    require_confirmation: bool = True        # false: medium-risk confirm becomes allow
    execution_timeout: float = 120.0
