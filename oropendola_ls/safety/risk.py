"""The seed's RiskAssessor: the same analysis as the validator, in risk vocabulary.

Levels and scores: low 20, medium 50, high 90. Empty or non-string input is high.
"""

from __future__ import annotations

from oropendola_ls.safety.validator import CommandValidator
from oropendola_ls.safety.verdict import GatePolicy, RiskAssessment

__all__ = ["RiskAssessor"]


class RiskAssessor:
    def __init__(self, policy: GatePolicy | None = None) -> None:
        self._validator = CommandValidator(policy)

    def assess(self, command: object) -> RiskAssessment:
        verdict = self._validator.validate(command)
        reasons = verdict.reasons
        if verdict.risk == "low":
            reason = reasons[0] if reasons else "No commands to run"
        else:
            top = next((f for f in verdict.findings if f.risk == verdict.risk), None)
            reason = top.message if top is not None else (reasons[0] if reasons else verdict.risk)
        return RiskAssessment(verdict.risk, reason, reasons, verdict.score)

    def is_safe(self, command: object) -> bool:
        """Low risk: read-only, nothing to ask about."""
        return self.assess(command).level == "low"

    def get_risk_score(self, command: object) -> int:
        return self.assess(command).score
