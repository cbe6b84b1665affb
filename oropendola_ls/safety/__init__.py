"""The command gate: every shell command the server would run goes through `CommandValidator`.

It parses the shell (tree-sitter-bash), unwraps wrappers, applies argument-aware program rules,
judges redirections and follows data flow within the line. `RiskAssessor` is the seed's view of
the same analysis. Plain Python: no LSP imports.
"""

from oropendola_ls.safety.risk import RiskAssessor
from oropendola_ls.safety.validator import CommandValidator
from oropendola_ls.safety.verdict import (
    Decision,
    Finding,
    GatePolicy,
    RiskAssessment,
    RiskLevel,
    Verdict,
)

__all__ = [
    "CommandValidator",
    "Decision",
    "Finding",
    "GatePolicy",
    "RiskAssessment",
    "RiskAssessor",
    "RiskLevel",
    "Verdict",
]
