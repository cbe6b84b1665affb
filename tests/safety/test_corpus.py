"""The labelled command corpus (tests/safety/corpus/*.tsv) scored through the command gate.

Scoring (command-safety.md §4.1):

* allow where confirm or block is expected: **hard failure**, a security bug; each case is its own
  test and fails on it;
* confirm where block is expected: **soft miss**;
* stricter than expected (block for confirm, confirm or block for allow): **over-strict**.

Targets: 0 hard, at most 5 soft misses, at most 5 over-strict; `test_corpus_summary` prints both
lists. Nothing in the corpus is ever executed: it is data only.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from oropendola_ls.safety import CommandValidator, GatePolicy

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
CATEGORIES = ("destructive", "exfiltration", "privilege", "obfuscation", "readonly", "mutating")
LABELS = ("allow", "confirm", "block")
ORDER = {"allow": 0, "confirm": 1, "block": 2}
ESC_PREFIX = "esc:"
MIN_CASES = 300
MAX_SOFT_MISSES = 5
MAX_OVER_STRICT = 5

# Characters that must be written with `esc:` escapes: control characters (tab and newline
# included), invisible format characters (zero-width, bidi, BOM, soft hyphen), and U+2028/U+2029.
_ESCAPE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SIMPLE_ESCAPES = {
    "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f",
    "n": "\n", "r": "\r", "t": "\t", "v": "\v", "0": "\0",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX = re.compile(r"[0-9a-fA-F]+")


class CorpusError(ValueError):
    """A malformed corpus line; the message names the file and line."""


@dataclass(frozen=True)
class Case:
    source: str        # file stem, e.g. "obfuscation"
    lineno: int
    expected: str      # allow | confirm | block
    command: str       # decoded: exactly what the gate sees
    note: str

    @property
    def id(self) -> str:
        shown = self.command.encode("unicode_escape").decode("ascii")
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{self.source}:{self.lineno}:{self.expected}:{shown}"


def needs_escape(ch: str) -> bool:
    return unicodedata.category(ch) in _ESCAPE_CATEGORIES


def decode_escapes(text: str) -> str:
    """Decode the Python-style escapes of an `esc:` command; reject unknown or cut-off ones."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(text):
            raise ValueError("trailing backslash")
        kind = text[i + 1]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            i += 2
        elif kind in _HEX_ESCAPES:
            width = _HEX_ESCAPES[kind]
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not _HEX.fullmatch(digits):
                raise ValueError(f"bad \\{kind} escape at offset {i}")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise ValueError(f"code point out of range at offset {i}")
            out.append(chr(code))
            i += 2 + width
        else:
            raise ValueError(f"unknown escape \\{kind} at offset {i}")
    return "".join(out)


def parse_line(line: str, *, source: str, lineno: int) -> Case | None:
    """One corpus line -> a Case, or None for blank and comment lines. Raises CorpusError."""
    where = f"{source}:{lineno}"
    if line == "" or line.startswith("#"):
        return None
    if not line.strip():
        raise CorpusError(f"{where}: whitespace-only line")
    fields = line.split("\t")
    if len(fields) != 3:
        raise CorpusError(f"{where}: expected 3 tab-separated columns, got {len(fields)}")
    expected, raw, note = fields
    if expected not in LABELS:
        raise CorpusError(f"{where}: unknown label {expected!r} (want one of {LABELS})")
    if not note.strip():
        raise CorpusError(f"{where}: empty note")
    for column, value in (("note", note), ("command", raw)):
        bad = sorted({f"U+{ord(c):04X}" for c in value if needs_escape(c)})
        if bad:
            hint = "; write the command with esc: escapes" if column == "command" else ""
            raise CorpusError(f"{where}: raw {', '.join(bad)} in the {column}{hint}")
    if raw.startswith(ESC_PREFIX):
        try:
            command = decode_escapes(raw[len(ESC_PREFIX):])
        except ValueError as exc:
            raise CorpusError(f"{where}: bad esc: value: {exc}") from None
    else:
        command = raw
        if command != command.strip():
            raise CorpusError(f"{where}: command has leading or trailing whitespace")
    if not command.strip():
        raise CorpusError(f"{where}: empty command")
    return Case(source, lineno, expected, command, note)


def parse_lines(lines: Iterable[str], *, source: str) -> list[Case]:
    cases = []
    for lineno, line in enumerate(lines, 1):
        case = parse_line(line, source=source, lineno=lineno)
        if case is not None:
            cases.append(case)
    return cases


def load_file(path: Path) -> list[Case]:
    # Bytes, not read_text(): universal-newline reading would turn a raw \r into a line break.
    text = path.read_bytes().decode("utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    # Split on LF only: str.splitlines() would also split on \r, U+2028, \x1c ... and hide them.
    return parse_lines(text.split("\n"), source=path.stem)


def load_corpus(directory: Path = CORPUS_DIR) -> list[Case]:
    """Every case of every *.tsv in `directory`; a command listed twice is an error."""
    cases: list[Case] = []
    seen: dict[str, Case] = {}
    for path in sorted(directory.glob("*.tsv")):
        for case in load_file(path):
            first = seen.setdefault(case.command, case)
            if first is not case:
                raise CorpusError(
                    f"{case.source}:{case.lineno}: duplicate of {first.source}:{first.lineno}"
                )
            cases.append(case)
    return cases


def classify(expected: str, got: str) -> str:
    """ok | hard | soft | over-strict."""
    if got == expected:
        return "ok"
    if got == "allow":
        return "hard"
    if ORDER[got] < ORDER[expected]:
        return "soft"
    return "over-strict"


CASES = load_corpus()


@functools.cache
def validator() -> CommandValidator:
    return CommandValidator(GatePolicy())


@functools.cache
def decide(command: str) -> str:
    return str(validator().validate(command).decision)


def describe(case: Case) -> str:
    verdict = validator().validate(case.command)
    reasons = "; ".join(verdict.reasons) or "(no reasons)"
    return (f"{case.source}:{case.lineno} expected {case.expected}, got {verdict.decision}"
            f" ({verdict.risk}, {verdict.score}): {case.command!r}  [{case.note}]  -> {reasons}")


# -- the corpus itself ----------------------------------------------------------------------


def test_corpus_size_and_categories() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases"
    per_file = Counter(case.source for case in CASES)
    for category in CATEGORIES:
        assert (CORPUS_DIR / f"{category}.tsv").is_file(), f"missing {category}.tsv"
        assert per_file[category] > 0, f"{category}.tsv has no cases"
    labels = Counter(case.expected for case in CASES)
    assert all(labels[label] > 0 for label in LABELS), labels


def test_readonly_file_is_all_allow_and_mutating_all_confirm() -> None:
    assert {c.expected for c in CASES if c.source == "readonly"} == {"allow"}
    assert {c.expected for c in CASES if c.source == "mutating"} == {"confirm"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("allow\tls", "3 tab-separated columns"),
        ("allow\tls\tnote\textra", "3 tab-separated columns"),
        ("allow ls note", "3 tab-separated columns"),
        ("permit\tls\tnote", "unknown label"),
        ("Allow\tls\tnote", "unknown label"),
        ("allow\t\tnote", "empty command"),
        ("allow\tesc:\tnote", "empty command"),
        ("allow\tls\t", "empty note"),
        ("allow\t ls\tnote", "leading or trailing whitespace"),
        ("block\trm -rf ~\x1b[2K\tnote", "raw U+001B"),
        ("block\tr\u200bm -rf /\tnote", "raw U+200B"),
        ("block\tls\u2028rm -rf /\tnote", "raw U+2028"),
        ("block\tls\rrm -rf /\tnote", "raw U+000D"),
        ("allow\tls\tnote with \u202e", "raw U+202E"),
        ("block\tesc:rm -rf ~\\\tnote", "trailing backslash"),
        ("block\tesc:\\q\tnote", "unknown escape"),
        ("block\tesc:\\x7\tnote", "bad \\x escape"),
        ("block\tesc:\\u20\tnote", "bad \\u escape"),
        ("block\tesc:\\UFFFFFFFF\tnote", "out of range"),
        ("   ", "whitespace-only"),
    ],
)
def test_loader_rejects_malformed_lines(line: str, message: str) -> None:
    with pytest.raises(CorpusError, match=re.escape(message)):
        parse_line(line, source="t", lineno=7)


def test_loader_accepts_comments_blank_lines_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_text(
        "# comment\n"
        "\n"
        "## section\n"
        "block\tesc:git status\\nrm -rf ~\tnewline\n"
        "confirm\tesc:r\\u200bm \\\\x \\x41\\t\\U0001F600\tescapes\n"
        "allow\techo '\\n' \"$(pwd)\"\traw backslashes are literal\n",
        encoding="utf-8",
    )
    cases = load_corpus(tmp_path)
    assert [c.command for c in cases] == [
        "git status\nrm -rf ~",
        "r\u200bm \\x A\t\U0001f600",
        "echo '\\n' \"$(pwd)\"",
    ]
    assert [(c.source, c.lineno, c.expected) for c in cases] == [
        ("x", 4, "block"), ("x", 5, "confirm"), ("x", 6, "allow"),
    ]


def test_loader_rejects_duplicates_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("allow\tls\tone\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("confirm\tls\ttwo\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="duplicate of a:1"):
        load_corpus(tmp_path)
    (tmp_path / "b.tsv").write_text("confirm\tpwd\ttwo\r\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="U\\+000D"):
        load_corpus(tmp_path)


def test_classify() -> None:
    assert classify("block", "block") == "ok"
    assert classify("block", "allow") == "hard"
    assert classify("confirm", "allow") == "hard"
    assert classify("block", "confirm") == "soft"
    assert classify("confirm", "block") == "over-strict"
    assert classify("allow", "confirm") == "over-strict"
    assert classify("allow", "block") == "over-strict"


# -- scoring through the gate ---------------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_case(case: Case) -> None:
    got = decide(case.command)
    assert got in LABELS, f"unexpected decision {got!r}"
    if classify(case.expected, got) == "hard":
        pytest.fail("HARD FAILURE (security bug): " + describe(case))


def test_corpus_summary() -> None:
    results: dict[str, list[Case]] = {"ok": [], "hard": [], "soft": [], "over-strict": []}
    for case in CASES:
        results[classify(case.expected, decide(case.command))].append(case)
    print(f"\ncorpus: {len(CASES)} cases, ok {len(results['ok'])}, hard {len(results['hard'])},"
          f" soft {len(results['soft'])}, over-strict {len(results['over-strict'])}")
    for kind in ("hard", "soft", "over-strict"):
        for case in results[kind]:
            print(f"  {kind}: {describe(case)}")
    assert not results["hard"], "hard failures, see the per-case tests"
    assert len(results["soft"]) <= MAX_SOFT_MISSES, (
        f"{len(results['soft'])} soft misses (target <= {MAX_SOFT_MISSES}):\n"
        + "\n".join(describe(c) for c in results["soft"]))
    assert len(results["over-strict"]) <= MAX_OVER_STRICT, (
        f"{len(results['over-strict'])} over-strict (target <= {MAX_OVER_STRICT}):\n"
        + "\n".join(describe(c) for c in results["over-strict"]))
