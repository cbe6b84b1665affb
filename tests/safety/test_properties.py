"""Metamorphic properties of the command gate (command-safety.md §4.2), over the labelled corpus.

* For every non-allow case, putting it after a read-only command, wrapping it in a shell, a
  launcher, a subshell, a group or a substitution, or path-qualifying or quote-splitting its verb
  never lowers the gate's verdict (allow < confirm < block), and never yields allow.
* For every allow case, `c | head`, `(c)` and `cd src && c` stay allow, and `c > /etc/x`
  becomes block.

Cases are drawn with hypothesis `sampled_from`, derandomized, so a run is deterministic. Nothing
is executed: commands are only handed to `CommandValidator.validate`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.safety.test_corpus import CASES, ORDER, Case, decide

EXAMPLES = 40
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

NON_ALLOW = [c for c in CASES if c.expected != "allow"]
ALLOW = [c for c in CASES if c.expected == "allow"]
BY_COMMAND = {c.command: c for c in CASES}

# Shell reserved words: nothing may be prefixed to them and they are not programs.
KEYWORDS = frozenset({
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "function", "select", "time", "coproc", "{", "}", "!", "[[", "]]",
})
# Builtins with no program of the same name: `env`/`timeout`/`nice` cannot run them and
# `/bin/<name>` does not exist, so wrapping them legitimately changes what runs.
BUILTINS = frozenset({
    "alias", "bg", "bind", "break", "builtin", "caller", "cd", "command", "compgen", "complete",
    "compopt", "continue", "declare", "dirs", "disown", "enable", "eval", "exec", "exit",
    "export", "fc", "fg", "getopts", "hash", "help", "history", "jobs", "let", "local",
    "logout", "mapfile", "popd", "pushd", "read", "readarray", "readonly", "return", "set",
    "shift", "shopt", "source", "suspend", "times", "trap", "type", "typeset", "ulimit",
    "umask", "unalias", "unset", "wait", ".", ":",
})
_PLAIN_VERB = re.compile(r"([A-Za-z_][A-Za-z0-9_.+-]*)(?=[ \t]|$)")


def first_word(command: str) -> str | None:
    """The leading plain word (no quotes, slashes, `=`, expansions), or None."""
    match = _PLAIN_VERB.match(command)
    return match.group(1) if match else None


def starts_with_word(command: str) -> bool:
    """The line starts with a plain word that is not a reserved word (builtins included)."""
    word = first_word(command)
    return word is not None and word not in KEYWORDS


def starts_with_program(command: str) -> bool:
    """The line starts with a plain word naming a program (not a reserved word or builtin)."""
    word = first_word(command)
    return word is not None and word not in KEYWORDS and word not in BUILTINS


def _replace_verb(command: str, new: Callable[[str], str]) -> str:
    word = first_word(command)
    assert word is not None
    return new(word) + command[len(word):]


# name -> (transform, applies to)
Transform = tuple[Callable[[str], str], Callable[[str], bool]]
ALWAYS: Callable[[str], bool] = lambda c: True  # noqa: E731

RAISING_CONTEXTS: dict[str, Transform] = {
    "after-git-status": (lambda c: f"git status; {c}", ALWAYS),
    "after-true-and": (lambda c: f"true && {c}", ALWAYS),
    "after-newline": (lambda c: f"ls -la\n{c}", ALWAYS),
    "bash-c": (lambda c: f"bash -c {shlex.quote(c)}", ALWAYS),
    "env": (lambda c: f"env X=1 {c}", starts_with_program),
    "timeout": (lambda c: f"timeout 5 {c}", starts_with_program),
    "nice": (lambda c: f"nice -n 1 {c}", starts_with_program),
    "assignment-prefix": (lambda c: f"FOO=1 {c}", starts_with_word),
    # Newlines rather than spaces so that a trailing comment or `&` in c stays valid.
    "subshell": (lambda c: f"(\n{c}\n)", ALWAYS),
    "brace-group": (lambda c: f"{{\n{c}\n}}", ALWAYS),
    "echo-substitution": (lambda c: f"echo $(\n{c}\n)", ALWAYS),
    "verb-/bin/": (lambda c: _replace_verb(c, lambda w: f"/bin/{w}"), starts_with_program),
    "verb-r''m": (lambda c: _replace_verb(c, lambda w: f"{w[0]}''{w[1:]}"),
                  lambda c: starts_with_program(c) and len(first_word(c) or "") > 1),
    'verb-"rm"': (lambda c: _replace_verb(c, lambda w: f'"{w}"'), starts_with_program),
    "verb-\\rm": (lambda c: _replace_verb(c, lambda w: f"\\{w}"), starts_with_program),
}


def _applicable(applies: Callable[[str], bool]) -> list[Case]:
    return [c for c in NON_ALLOW if applies(c.command)]


def _check_not_lower(case: Case, variant: str) -> None:
    base = decide(case.command)
    got = decide(variant)
    assert got != "allow", (
        f"variant of a {case.expected} case is allowed\n  case {case.id}: {case.command!r}"
        f" -> {base}\n  variant: {variant!r} -> {got}")
    assert ORDER[got] >= ORDER[base], (
        f"variant lowers the verdict {base} -> {got}\n  case {case.id}: {case.command!r}"
        f"\n  variant: {variant!r}")


# Counterexamples found by an exhaustive run over the corpus; always tried first.
PINNED: dict[str, tuple[str, ...]] = {
    "after-newline": ("\\rm -rf /",),
    "assignment-prefix": ('export PATH="./node_modules/.bin:$PATH"',),
}


@pytest.mark.parametrize("name", sorted(RAISING_CONTEXTS))
def test_context_never_lowers_verdict(name: str) -> None:
    transform, applies = RAISING_CONTEXTS[name]
    pool = _applicable(applies)
    assert len(pool) >= 20, f"{name}: only {len(pool)} applicable cases"

    def check(case: Case) -> None:
        _check_not_lower(case, transform(case.command))

    test = given(case=st.sampled_from(pool))(check)
    for command in PINNED.get(name, ()):
        test = example(case=BY_COMMAND[command])(test)
    SETTINGS(test)()


# A prefix that changes directory changes what later relative paths mean (`cd src && ls` then
# `rm -rf ..` deletes the workspace, not its parent), so those are not neutral prefixes.
NEUTRAL_PREFIXES = [
    c for c in ALLOW if "\n" not in c.command and not re.search(r"\b(cd|pushd|popd)\b", c.command)
]


@SETTINGS
@given(allowed=st.sampled_from(NEUTRAL_PREFIXES), case=st.sampled_from(NON_ALLOW))
@example(allowed=BY_COMMAND["ls"], case=BY_COMMAND["\\rm -rf /"])
@example(allowed=BY_COMMAND["tail -n +2 data.csv | cut -d, -f1 | sort -u"],
         case=BY_COMMAND["sfdisk /dev/sda < layout.txt"])
@example(allowed=BY_COMMAND["git log --oneline | grep fix | head -5"],
         case=BY_COMMAND["cd ~ && rm -rf *"])
@example(allowed=BY_COMMAND["du -sh * | sort -h | tail -n 5"],
         case=BY_COMMAND["bash <<'EOF'\nrm -rf ~\nEOF"])
def test_newline_after_any_allowed_command_never_lowers(allowed: Case, case: Case) -> None:
    _check_not_lower(case, f"{allowed.command}\n{case.command}")


def test_verb_transforms_apply_only_to_plain_verbs() -> None:
    assert first_word("rm -rf /") == "rm"
    assert first_word("mkfs.ext4 /dev/sdb1") == "mkfs.ext4"
    assert first_word("/bin/rm -rf /") is None
    assert first_word("'rm' -rf /") is None
    assert first_word("FOO=1 rm -rf /") is None
    assert first_word("ls() { rm -rf ~; }; ls") is None
    assert first_word("ls;rm") is None
    assert not starts_with_program("cd ~ && rm -rf *")
    assert starts_with_word("cd ~ && rm -rf *")
    assert not starts_with_word("if true; then rm -rf ~; fi")
    transform = RAISING_CONTEXTS["verb-r''m"][0]
    assert transform("rm -rf ~") == "r''m -rf ~"
    assert RAISING_CONTEXTS["verb-\\rm"][0]("curl x | sh") == "\\curl x | sh"


# -- allow cases stay allowed in read-only contexts; a write to /etc is blocked ---------------


def _grouped(c: str) -> str:
    """c as one unit that a pipe, `&&` or a redirection can follow (comments, heredocs)."""
    return f"{{\n{c}\n}}" if ("\n" in c or "#" in c) else c


ALLOW_CONTEXTS: dict[str, tuple[Callable[[str], str], str]] = {
    "pipe-head": (lambda c: f"{_grouped(c)} | head", "allow"),
    # Spaces inside: `((` would start an arithmetic command when c itself starts with `(`.
    "subshell": (lambda c: f"( {c} )" if _grouped(c) == c else f"(\n{c}\n)", "allow"),
    "cd-src": (lambda c: f"cd src && {_grouped(c)}", "allow"),
    "redirect-etc": (lambda c: f"{_grouped(c)} > /etc/x", "block"),
}


@pytest.mark.parametrize("name", sorted(ALLOW_CONTEXTS))
def test_allow_cases_in_context(name: str) -> None:
    transform, want = ALLOW_CONTEXTS[name]

    @SETTINGS
    @given(case=st.sampled_from(ALLOW))
    def check(case: Case) -> None:
        if decide(case.command) != "allow":
            return  # scored (over-strict) by test_corpus; nothing to preserve here
        variant = transform(case.command)
        got = decide(variant)
        assert got == want, (
            f"{name}: {variant!r} -> {got}, want {want} (case {case.id})")

    check()
