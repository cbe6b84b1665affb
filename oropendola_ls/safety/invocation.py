"""The working objects shared by the analyzer, the unwrapper and the program rules.

One job: describe one simple command being judged (`Invocation`), what the analysis found
(`Hit`, `CommandRecord`) and what flows between pipeline stages (`Flow`). The analyzer creates
them; `unwrap.py` and `rules.py` only read words and report through these methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from oropendola_ls.safety.shell_ast import Word
from oropendola_ls.safety.targets import Target, resolve
from oropendola_ls.safety.verdict import Decision, RiskLevel

__all__ = [
    "DECODE",
    "DYNAMIC",
    "FETCH",
    "SECRET",
    "SHELL",
    "CommandRecord",
    "Engine",
    "Flow",
    "Hit",
    "Invocation",
    "Scope",
]

# Flow flags: what a stage writes to stdout.
FETCH = 1  # downloaded from the network
DECODE = 2  # decoded / de-obfuscated (base64 -d, xxd -r)
SECRET = 4  # credentials (secret files, the environment)
SHELL = 8  # output of a shell or interpreter running its input (reverse shells)

DYNAMIC = "\x00dynamic"  # stands for an unresolvable word in recorded argv


class Hit:
    """One finding in the making (converted to `verdict.Finding` by the validator)."""

    __slots__ = ("cmd", "decision", "lowerable", "message", "risk", "rule", "span", "subcommand")

    def __init__(
        self,
        rule: str,
        decision: Decision,
        risk: RiskLevel,
        message: str,
        subcommand: str,
        span: tuple[int, int] | None,
        cmd: int | None,
        lowerable: bool,
    ) -> None:
        self.rule = rule
        self.decision: Decision = decision
        self.risk: RiskLevel = risk
        self.message = message
        self.subcommand = subcommand
        self.span = span
        self.cmd = cmd
        self.lowerable = lowerable

    def __repr__(self) -> str:
        return f"Hit({self.rule}, {self.decision}, {self.risk}, {self.message!r})"


class CommandRecord:
    """One simple command of the line, after unwrapping."""

    trusted: bool = True  # program name not path-qualified outside system bin dirs
    positive: bool = False  # reached a positive read-only rule
    prefix: tuple[str, ...] | None = None  # "Always allow" prefix
    long_running: bool = False  # install / clone / build: 3x timeout
    argv: tuple[str, ...] = ()  # the innermost program's argv (allow matching)
    why: str = ""  # the read-only rule reached, for an allow verdict's explanation

    def __init__(self, index: int, text: str, span: tuple[int, int] | None) -> None:
        self.index = index
        self.text = text
        self.span = span
        self.levels: list[tuple[str, ...]] = []  # argv at each wrapper level (deny matching)


class Flow:
    """What a statement writes to stdout, as far as data-flow rules care."""

    __slots__ = ("lang", "literal", "out")

    def __init__(self, out: int = 0, literal: str | None = None, lang: str = "shell") -> None:
        self.out = out
        self.literal = literal  # known text on stdout (echo 'x', heredoc bodies)
        self.lang = lang


class Scope:
    """Shell state tracked through one line: cwd, known variables, functions defined.

    Subshell copies share the parent's tables until they write (copy on write): most
    subshells (pipeline stages, substitutions) never assign anything.
    """

    __slots__ = ("cwd", "functions", "owned", "taint", "vars")

    def __init__(self, cwd: str | None, vars_: dict[str, str | None], functions: set[str]) -> None:
        self.cwd = cwd
        self.vars = vars_
        self.functions = functions
        self.taint: dict[str, int] = {}  # variable -> Flow flags of the data assigned to it
        self.owned = True

    def child(self) -> Scope:
        """A subshell's copy: changes inside do not leak out."""
        copy = Scope(self.cwd, self.vars, self.functions)
        copy.taint = self.taint
        copy.owned = False
        return copy

    def _own(self) -> None:
        if not self.owned:
            self.vars = dict(self.vars)
            self.functions = set(self.functions)
            self.taint = dict(self.taint)
            self.owned = True

    def set_var(self, name: str, value: str | None, flow: int = 0) -> None:
        """Assign ``name``; ``flow`` says the value came from a download, decoder or secret."""
        self._own()
        self.vars[name] = value
        if flow:
            self.taint[name] = flow
        elif name in self.taint:
            del self.taint[name]

    def unset_var(self, name: str) -> None:
        if name in self.vars:
            self._own()
            del self.vars[name]

    def add_function(self, name: str) -> None:
        self._own()
        self.functions.add(name)


class Engine(Protocol):
    """What rules and wrappers may ask the analyzer to do."""

    def nested_script(
        self, inv: Invocation, text: str, word: Word | None, lang: str = "shell"
    ) -> None:
        """Analyse ``text`` as code in ``lang`` (shell, python, node, perl, ruby, php, awk)."""

    def sub_invocation(self, inv: Invocation, words: list[Word]) -> None:
        """Analyse ``words`` as another simple command (``find -exec``)."""

    def judge_write(self, inv: Invocation, word: Word, how: str) -> None:
        """Judge a file this command writes (destination of cp/mv/tee, ``-o FILE``)."""

    def check_assignment(
        self, inv: Invocation, name: str, value: str | None, word: Word | None
    ) -> None:
        """Judge ``NAME=VALUE`` given to a command (env, git -c style)."""

    def downloaded(self, path: str | None) -> bool:
        """Was this path downloaded earlier in the line?"""

    def record_download(self, inv: Invocation, word: Word | None) -> None:
        """A file fetched from the network is written to ``word``'s path."""


class Invocation:
    """One simple command under judgement: its words from the current wrapper level on.

    Rarely-changed attributes are class-level defaults: an invocation is created per command.
    """

    start: int = 0  # index of the current program word in ``words``
    name: str = ""  # basename of the current program
    extra_unknown: bool = False  # xargs / find -exec: more arguments arrive at run time
    out: int = 0  # Flow flags written to stdout
    literal: str | None = None  # known stdout text (echo)
    passthrough: bool = False  # stdout carries stdin (cat, tee)
    exec_lang: str | None = None  # executes stdin as code in this language
    network: bool = False  # talks to the network
    positive: bool = False
    outer: tuple[int, int] | None = None  # span of nested code in the original line

    def __init__(
        self,
        engine: Engine,
        record: CommandRecord,
        words: list[Word],
        scope: Scope,
        stdin: Flow | None,
        sub: str,
        span: tuple[int, int] | None,
        depth: int,
        hits: list[Hit],
    ) -> None:
        self.engine = engine
        self.record = record
        self.words = words
        self.scope = scope
        self.cwd = scope.cwd
        self.stdin = stdin
        self.sub = sub
        self.span = span
        self.depth = depth
        self.hits = hits

    # --- words ---------------------------------------------------------------------------

    @property
    def args(self) -> list[Word]:
        return self.words[self.start + 1 :]

    @property
    def values(self) -> list[str | None]:
        return [w.value for w in self.words[self.start + 1 :]]

    @property
    def program(self) -> Word:
        return self.words[self.start]

    def target(self, word: Word) -> Target:
        if word.value is None:
            return Target(None)
        return resolve(word.value, self.cwd)

    # --- reporting -----------------------------------------------------------------------

    def hit(
        self,
        rule: str,
        decision: Decision,
        risk: RiskLevel,
        why: str,
        *,
        lowerable: bool = False,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.hits.append(
            Hit(
                rule,
                decision,
                risk,
                f"{short(self.sub)}: {why}",
                self.sub,
                span or self.span,
                self.record.index,
                lowerable,
            )
        )

    def block(self, rule: str, why: str) -> None:
        self.hit(rule, "block", "high", why)

    def confirm(
        self, rule: str, why: str, risk: RiskLevel = "medium", *, lowerable: bool = True
    ) -> None:
        """A confirm about the program itself (lowerable by an allowlist entry by default)."""
        self.hit(rule, "confirm", risk, why, lowerable=lowerable)

    def read_only(self, why: str = "") -> None:
        """A positive read-only rule was reached. The reason is reported only when the whole
        line is allowed (it explains the allow; next to a question it would be noise)."""
        self.positive = True
        if why:
            self.record.why = why

    def long_running(self) -> None:
        self.record.long_running = True

    def prefix(self, words: Iterable[str | None]) -> None:
        """Offer this argv prefix for "Always allow" (ignored when dynamic or a bare name)."""
        pre = tuple(words)
        if len(pre) >= 2 and all(p is not None and p != "" and p != DYNAMIC for p in pre):
            self.record.prefix = tuple(p for p in pre if p is not None)

    def prefix_args(self, count: int) -> None:
        """Offer the program and its first ``count`` arguments, exactly as written."""
        level = self.record.argv
        if 0 < count < len(level):
            self.prefix(level[: count + 1])
        elif count >= len(level) > 1:
            self.prefix(level)


def short(text: str, limit: int = 80) -> str:
    """The sub-command as shown in a message: hidden characters escaped, whitespace folded."""
    if len(text) <= limit and text.isascii() and text.isprintable() and "  " not in text:
        return f"`{text}`"
    if not text.isascii() or not text.isprintable():
        text = "".join(c if c.isprintable() or c in " \n\t" else f"\\u{ord(c):04x}" for c in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`"
