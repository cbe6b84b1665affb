"""The command gate: one verdict per command line.

One job: run the analysis and apply the user's policy — denylist (blocks), allowlist (lowers a
medium-risk confirm about that very sub-command), ``require_confirmation`` (medium-risk confirms
become allow), timeouts (3x for installs, clones and builds) and the "Always allow" prefixes.
The most restrictive finding wins. The command text is never rewritten.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable

from oropendola_ls.safety.analyzer import Analysis, analyze, analyze_oversize
from oropendola_ls.safety.fallback import MAX_LENGTH, PARSE_LIMIT, hidden_characters
from oropendola_ls.safety.invocation import DYNAMIC, CommandRecord, Hit, short
from oropendola_ls.safety.targets import TRUSTED_BIN_DIRS, basename
from oropendola_ls.safety.unwrap import INTERPRETERS, SHELLS, WRAPPERS, is_python
from oropendola_ls.safety.verdict import (
    DECISION_ORDER,
    RISK_ORDER,
    RISK_SCORES,
    Decision,
    Finding,
    GatePolicy,
    RiskLevel,
    Verdict,
)

__all__ = ["CommandValidator", "split_entry"]

log = logging.getLogger(__name__)

_BANNED_PREFIX_PROGRAMS = (
    frozenset(WRAPPERS) | SHELLS | INTERPRETERS | {"source", ".", "exec", "eval", "xargs"}
)


def split_entry(entry: str) -> tuple[str, ...]:
    """An allowedCommands/deniedCommands entry as argv words (``"npm test"`` -> npm, test)."""
    try:
        return tuple(shlex.split(entry))
    except ValueError:
        return tuple(entry.split())


def _program_names(word: str) -> tuple[str, ...]:
    """Names a rule entry's program may be compared with, for a written program word."""
    if "/" not in word:
        return (word,)
    directory = word.rstrip("/").rsplit("/", 1)[0] or "/"
    if directory in TRUSTED_BIN_DIRS:
        return (word, basename(word))
    return (word,)


def _matches(entry: tuple[str, ...], argv: tuple[str, ...], *, by_basename: bool) -> bool:
    if not entry or len(argv) < len(entry):
        return False
    program = argv[0]
    names = (program, basename(program)) if by_basename else _program_names(program)
    if entry[0] not in names:
        return False
    return all(
        a == b and a != DYNAMIC for a, b in zip(entry[1:], argv[1 : len(entry)], strict=False)
    )


class CommandValidator:
    """Gate every shell command the server would run."""

    cache_size = 1024
    """Verdicts kept per validator, keyed by command text (a verdict depends only on the text and
    the policy; the server checks a command when it is proposed and again when it runs)."""

    def __init__(self, policy: GatePolicy | None = None) -> None:
        self._policy = policy or GatePolicy()
        self._allow: tuple[tuple[str, ...], ...] = ()
        self._deny: tuple[tuple[str, ...], ...] = ()
        self._cache: dict[str, Verdict] = {}
        self.policy = self._policy

    @property
    def policy(self) -> GatePolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: GatePolicy) -> None:
        self._policy = policy
        self._allow = _entries(policy.allowed_commands)
        self._deny = _entries(policy.denied_commands)
        self._cache = {}

    # --- public ---------------------------------------------------------------------------

    def validate(self, command: object) -> Verdict:
        """The verdict for ``command``. Never raises; anything but a non-empty string blocks."""
        if type(command) is not str:
            if not isinstance(command, str):
                return self._reject(
                    "", "invalid-input", f"the command is not a string ({type(command).__name__})"
                )
            command = str.__str__(command)  # a str subclass: judge the plain text
        cached = self._cache.get(command)
        if cached is not None:
            return cached
        if not command or command.isspace():
            return self._reject(command, "empty-command", "Empty command: nothing to run")
        try:
            verdict = self._validate(command)
        except Exception:  # the gate must answer; an internal error fails closed
            log.exception("command gate failed on %r", command[:200])
            finding = Finding(
                "gate-error",
                "confirm",
                "high",
                f"{short(command)}: the gate could not analyse this command",
                command,
            )
            return Verdict(
                command,
                "confirm",
                "high",
                RISK_SCORES["high"],
                (finding,),
                self._policy.execution_timeout,
            )
        cache = self._cache
        if self.cache_size and len(command) <= 4096:
            if len(cache) >= self.cache_size:
                cache.clear()
            cache[command] = verdict
        return verdict

    # --- internals ------------------------------------------------------------------------

    def _reject(self, command: str, rule: str, why: str) -> Verdict:
        finding = Finding(rule, "block", "high", why, command)
        return Verdict(
            command,
            "block",
            "high",
            RISK_SCORES["high"],
            (finding,),
            self._policy.execution_timeout,
        )

    def _validate(self, command: str) -> Verdict:
        raw: list[Hit] = []
        hidden = hidden_characters(command)
        if hidden:
            raw.append(
                Hit(
                    "hidden-characters",
                    "confirm",
                    "high",
                    f"{short(command)}: contains characters that do not show on screen "
                    f"({', '.join(hidden[:6])}); what you see may not be what runs",
                    command,
                    None,
                    None,
                    False,
                )
            )
        if len(command) > MAX_LENGTH:
            raw.append(
                Hit(
                    "oversize",
                    "confirm",
                    "high",
                    f"command is {len(command)} characters long (limit {MAX_LENGTH}): "
                    "too long to review",
                    command[:200],
                    None,
                    None,
                    False,
                )
            )
        analysis = analyze_oversize(command) if len(command) > PARSE_LIMIT else analyze(command)
        return self._verdict(command, raw + analysis.hits, analysis)

    def _verdict(self, command: str, hits: list[Hit], analysis: Analysis) -> Verdict:
        policy = self._policy
        records = analysis.records

        if self._deny:
            self._apply_deny(hits, records)
        allowed = self._apply_allow(hits, records) if self._allow else set()

        # every simple command must reach a positive rule, or say why not
        unexplained = [r for r in records if not r.positive and r.index not in allowed]
        if unexplained:
            confirming = {h.cmd for h in hits if h.cmd is not None and h.decision != "allow"}
            for record in unexplained:
                if record.index not in confirming:
                    hits.append(
                        Hit(
                            "not-read-only",
                            "confirm",
                            "medium",
                            f"{short(record.text)}: not known to be read-only",
                            record.text,
                            record.span,
                            record.index,
                            False,
                        )
                    )

        relax = not policy.require_confirmation
        decision = 0
        risk = 0
        for h in hits:
            if relax and h.decision == "confirm" and h.risk == "medium":
                h.decision = "allow"
                h.message += " (confirmation turned off by commandRequireConfirmation)"
            d = DECISION_ORDER[h.decision]
            if d > decision:
                decision = d
            r = RISK_ORDER[h.risk]
            if r > risk:
                risk = r
        if decision == 2:
            risk = 2
        elif decision == 1 and risk == 0:
            risk = 1
        decision_name: Decision = _DECISIONS[decision]
        risk_name: RiskLevel = _RISKS[risk]

        prefixes: tuple[tuple[str, ...], ...] = ()
        if risk < 2 and decision == 1:
            prefixes = _allow_prefixes(hits, records)
        timeout = policy.execution_timeout
        for rec in records:
            if rec.long_running:
                timeout *= 3
                break
        findings = _findings(hits)
        if decision == 0:
            findings += tuple(
                Finding(
                    "read-only", "allow", "low", f"{short(rec.text)}: {rec.why}", rec.text, rec.span
                )
                for rec in records
                if rec.why and rec.positive
            )
        return Verdict(
            command, decision_name, risk_name, RISK_SCORES[risk_name], findings, timeout, prefixes
        )

    def _apply_deny(self, hits: list[Hit], records: list[CommandRecord]) -> None:
        """A deniedCommands prefix of any wrapper level of any simple command blocks."""
        for record in records:
            for level in record.levels:
                entry = next((e for e in self._deny if _matches(e, level, by_basename=True)), None)
                if entry is not None:
                    hits.append(
                        Hit(
                            "denied-command",
                            "block",
                            "high",
                            f"{short(record.text)}: matches deniedCommands entry "
                            f"'{shlex.join(entry)}'",
                            record.text,
                            record.span,
                            record.index,
                            False,
                        )
                    )
                    break

    def _apply_allow(self, hits: list[Hit], records: list[CommandRecord]) -> set[int]:
        """An allowedCommands prefix lowers medium-risk confirms about that very sub-command."""
        allowed: set[int] = set()
        for record in records:
            entry = next(
                (e for e in self._allow if _matches(e, record.argv, by_basename=False)), None
            )
            if entry is None:
                continue
            allowed.add(record.index)
            for h in hits:
                if (
                    h.cmd == record.index
                    and h.lowerable
                    and h.decision == "confirm"
                    and h.risk == "medium"
                ):
                    h.decision = "allow"
                    h.risk = "low"
                    h.rule = "allowed-command"
                    h.message += f" (allowed by allowedCommands entry '{shlex.join(entry)}')"
        return allowed


_DECISIONS: tuple[Decision, Decision, Decision] = ("allow", "confirm", "block")
_RISKS: tuple[RiskLevel, RiskLevel, RiskLevel] = ("low", "medium", "high")


def _entries(entries: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    out = []
    for e in entries:
        if isinstance(e, str):
            words = split_entry(e)
            if words:
                out.append(words)
    return tuple(out)


def _findings(hits: list[Hit]) -> tuple[Finding, ...]:
    if not hits:
        return ()
    if len(hits) == 1:
        h = hits[0]
        return (Finding(h.rule, h.decision, h.risk, h.message, h.subcommand, h.span),)
    seen: set[tuple[str, str]] = set()
    unique: list[Hit] = []
    for h in hits:
        key = (h.rule, h.message)
        if key not in seen:
            seen.add(key)
            unique.append(h)
    unique.sort(key=lambda h: (-DECISION_ORDER[h.decision], -RISK_ORDER[h.risk]))
    return tuple(
        Finding(h.rule, h.decision, h.risk, h.message, h.subcommand, h.span) for h in unique
    )


def _allow_prefixes(hits: list[Hit], records: list[CommandRecord]) -> tuple[tuple[str, ...], ...]:
    """For each sub-command whose confirm an allowlist entry would lift, the entry to store."""
    out: list[tuple[str, ...]] = []
    for h in hits:
        if h.decision != "confirm" or not h.lowerable or h.cmd is None:
            continue
        record = records[h.cmd] if 0 <= h.cmd < len(records) else None
        if record is None or record.prefix is None or len(record.prefix) < 2:
            continue
        program = basename(record.prefix[0])
        if program in _BANNED_PREFIX_PROGRAMS or is_python(program):
            continue
        if record.prefix not in out:
            out.append(record.prefix)
    return tuple(out)
