"""Fail-closed checks for text the parser cannot be trusted with.

One job: raw-text findings before parsing (hidden or control characters, oversize input) and,
for unparseable input, raise-only re-readings — catastrophic shapes found by pattern, and
alternative texts (brace lists expanded, the line cut at separators) for the analyzer to read
again. Nothing here can lower a verdict: the analyzer keeps only blocks from these readings.
"""

from __future__ import annotations

import re
import unicodedata

from oropendola_ls.safety.shell_ast import brace_expand

__all__ = ["MAX_LENGTH", "PARSE_LIMIT", "hidden_characters", "readings", "scan"]

MAX_LENGTH = 16 * 1024
"""Longer commands are confirmed whatever they contain (a person cannot review them either)."""
PARSE_LIMIT = 256 * 1024
"""Longer commands are not parsed at all; only the pattern scan runs."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def hidden_characters(text: str) -> list[str]:
    """Names of characters a reader would not see (or would misread): controls other than tab
    and newline, format characters (zero-width, bidi overrides, BOM), line/paragraph separators,
    non-ASCII spaces."""
    found: list[str] = []
    if _CONTROL.search(text):
        found.extend(sorted({f"U+{ord(c):04X}" for c in _CONTROL.findall(text)}))
    if not text.isascii():
        for c in text:
            if ord(c) > 127 and unicodedata.category(c) in _HIDDEN_CATEGORIES:
                label = f"U+{ord(c):04X}"
                if label not in found:
                    found.append(label)
    return found


# Linear-time patterns (bounded repetitions, anchored starts): they run on up to PARSE_LIMIT and
# beyond, so nothing may backtrack quadratically.
_DEV_NET = re.compile(r"/dev/(?:tcp|udp)/")
_FORK_BOMB = re.compile(
    r"(?<![\w:.\-])([\w:.\-]{1,64})[ \t]*\([ \t]*\)[ \t]*\{[^}]{0,200}?\1[ \t]*\|[ \t]*\1[ \t]*&"
)
_FETCH_EXEC = re.compile(
    r"\b(?:curl|wget)\b[^\n;&|]{0,2000}\|[ \t]*(?:sudo[ \t]+)?(?:env[ \t]+)?(?:/[\w/.-]{0,64}/)?"
    r"(?:(?:ba|z|da|k|fi)?sh|python[0-9.]{0,4}|perl|ruby|node)\b"
)
_RM_ROOT = re.compile(
    r"(?<![\w./-])(?:/[\w/.-]{0,64}/)?rm[ \t]+(?:-[\w-]{0,20}[ \t]+){0,8}?"
    r"-[\w-]{0,20}[rR][\w-]{0,20}[ \t]+"
    r"(?:-[\w-]{0,20}[ \t]+){0,8}['\"]?(?:/|~|\$HOME|\$\{HOME\})/?\*?(?=[ \t;&|)`}\n'\"\\]|$)"
)
_DISK = re.compile(
    r"(?<![\w.-])(?:mkfs(?:\.\w{1,10})?|wipefs|mke2fs)[ \t]|\bdd\b[^\n;&|]{0,500}\bof=/dev/"
    r"(?!null\b|zero\b|stdout\b|stderr\b)"
)
_POWER = re.compile(r"(?:^|[;&|(`{\n][ \t]*|\bsudo[ \t]+)(?:shutdown|reboot|halt|poweroff)\b")


def scan(text: str) -> list[tuple[str, str]]:
    """Catastrophic shapes found by pattern, for text that did not parse: (rule, why)."""
    found: list[tuple[str, str]] = []
    if _DEV_NET.search(text):
        found.append(("network-device", "opens a raw network connection (/dev/tcp or /dev/udp)"))
    if _FORK_BOMB.search(text):
        found.append(("fork-bomb", "has the shape of a fork bomb"))
    if _FETCH_EXEC.search(text):
        found.append(("fetch-to-exec", "pipes a download into a shell or interpreter"))
    if _RM_ROOT.search(text):
        found.append(("rm-recursive-catastrophic", "recursively deletes / or the home directory"))
    if _DISK.search(text):
        found.append(("disk-destroy", "formats or overwrites a disk"))
    if _POWER.search(text):
        found.append(("power", "shuts the machine down or restarts it"))
    return found


_BRACE_WORD = re.compile(r"(?<![\w$])\{[^{}\s,]{0,200},[^{}\s]{0,400}\}")
_SEPARATORS = re.compile(r"\|\||&&|[;&|\n(){}`]|\$\(")


def readings(text: str) -> list[str]:
    """Other ways to read unparseable text: brace lists in command position expanded
    (``{rm,-rf,~}``), each line on its own, and each piece between separators on its own."""
    out: list[str] = []
    if _BRACE_WORD.search(text):
        out.append(_BRACE_WORD.sub(lambda m: " ".join(brace_expand(m.group(0))), text))
    if "\n" in text:
        lines = [line.strip() for line in text.replace("\\\n", "").split("\n")]
        out.extend(line for line in lines[:64] if line and line != text.strip())
    pieces = [p.strip() for p in _SEPARATORS.split(text)]
    pieces = [p for p in pieces if p and p != text.strip()]
    out.extend(pieces[:64])
    return out
