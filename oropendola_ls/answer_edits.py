"""From a chat answer to an edit: the code block meant as the replacement, fitted to the selection.

Plain code (no LSP types), used by the code actions (features/code_actions.py):

- `code_blocks` reads the fenced code blocks of a Markdown answer (```` ``` ```` and ``~~~``
  fences, CommonMark rules: an opening fence of three or more, indented at most three spaces; a
  closing fence of the same character at least as long; an unclosed block runs to the end and
  is marked so, and is never used for an edit: the answer was cut short).
- `replacement_block` picks the block meant to replace the selection: the first whose language
  is the document's, else the first that is not tagged with another language this module knows
  (a ```` ```sh ```` block in an answer about Python is a command to run, not the new code),
  else none.
- `fit_to_selection` shapes that code to the selection it replaces: the selection's leading and
  trailing newlines are kept, CRLF documents get CRLF, and a block that was dedented gets the
  selection's base indentation back (a selection that starts after its line's indentation gets
  a first line without it).
- `suggested_test_path` is where a generated test file goes: the path the answer names ("save it as
  `tests/test_mod.py`") when it is a safe relative path, else ``tests/test_<module>.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

_OPENING = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_SAVE_AS = re.compile(
    r"\bsave\s+(?:it|this|them|the\s+(?:file|tests?|code))?\s*(?:as|to|in)\s+"
    r"(`+)\s*([^`\n]+?)\s*\1",
    re.IGNORECASE,
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "python": ("python", "py", "python3", "py3", "pyi"),
    "javascript": ("javascript", "js", "node", "mjs", "cjs"),
    "javascriptreact": ("javascriptreact", "jsx"),
    "typescript": ("typescript", "ts", "mts", "cts"),
    "typescriptreact": ("typescriptreact", "tsx"),
    "shellscript": ("shellscript", "sh", "bash", "zsh", "shell", "console", "fish", "ksh"),
    "powershell": ("powershell", "ps1", "pwsh"),
    "rust": ("rust", "rs"),
    "go": ("go", "golang"),
    "c": ("c", "h"),
    "cpp": ("cpp", "c++", "cc", "cxx", "hpp", "hh"),
    "csharp": ("csharp", "cs", "c#"),
    "java": ("java",),
    "kotlin": ("kotlin", "kt", "kts"),
    "swift": ("swift",),
    "ruby": ("ruby", "rb"),
    "php": ("php",),
    "lua": ("lua",),
    "html": ("html", "htm", "xhtml"),
    "css": ("css",),
    "scss": ("scss",),
    "json": ("json", "jsonc", "json5"),
    "yaml": ("yaml", "yml"),
    "toml": ("toml",),
    "xml": ("xml",),
    "sql": ("sql",),
    "markdown": ("markdown", "md"),
    "diff": ("diff", "patch"),
    "dockerfile": ("dockerfile", "docker"),
    "makefile": ("makefile", "make"),
}
_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
_UNTAGGED = frozenset({"", "text", "plaintext", "plain", "txt"})


@dataclass(frozen=True, slots=True)
class CodeBlock:
    info: str
    """The fence's info string, first word (``python``, ``ts``, or empty)."""
    code: str
    """The content, lines joined with ``\\n``, without a final newline."""
    closed: bool
    """False for a block that runs to the end of the answer without a closing fence."""

    @property
    def language(self) -> str | None:
        """The canonical language of the info string (``py`` → ``python``), if known."""
        return canonical_language(self.info)


def canonical_language(name: str | None) -> str | None:
    """``name`` (an LSP language id or a fence info string) as one canonical language name.

    Unknown names are returned lower-cased; empty and ``text``-like names give None.
    """
    if not name:
        return None
    key = name.strip().lower()
    if key in _UNTAGGED:
        return None
    return _CANONICAL.get(key, key)


def code_blocks(answer: str) -> list[CodeBlock]:
    """Every fenced code block of ``answer``, in order."""
    lines = answer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[CodeBlock] = []
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3).strip()
        if fence[0] == "`" and "`" in info:
            continue  # not a fence (CommonMark: a backtick fence's info has no backtick)
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        closed = False
        while index < len(lines):
            line = lines[index]
            index += 1
            if closing.match(line):
                closed = True
                break
            body.append(_strip_spaces(line, indent))
        blocks.append(CodeBlock(info.split()[0] if info else "", "\n".join(body), closed))
    return blocks


def replacement_block(answer: str, language: str | None) -> CodeBlock | None:
    """The closed code block meant to replace the selection of a ``language`` document."""
    blocks = [block for block in code_blocks(answer) if block.closed and block.code.strip()]
    wanted = canonical_language(language)
    if wanted is not None:
        for block in blocks:
            if block.language == wanted:
                return block
    for block in blocks:
        tagged = block.language
        if wanted is None or tagged is None or tagged not in _ALIASES:
            return block
    return None


def replacement_text(answer: str, selection: str, language: str | None,
                     line_prefix: str = "") -> str | None:
    """The text that replaces ``selection``, or None when the answer has no code block for it."""
    block = replacement_block(answer, language)
    if block is None:
        return None
    return fit_to_selection(block.code, selection, line_prefix)


def fit_to_selection(code: str, selection: str, line_prefix: str = "") -> str:
    """``code`` shaped to replace ``selection``.

    ``line_prefix`` is the document's text on the selection's first line before the selection.
    """
    eol = "\r\n" if "\r\n" in selection else "\n"
    selected = selection.replace("\r\n", "\n")
    lead = selected[: len(selected) - len(selected.lstrip("\n"))]
    trail = selected[len(selected.rstrip("\n")):] if selected.strip("\n") else ""
    core = selected[len(lead): len(selected) - len(trail)]
    prefix = "" if lead else line_prefix
    body = _trim_blank_lines(code.replace("\r\n", "\n"))
    if not body:
        return lead + trail if eol == "\n" else (lead + trail).replace("\n", eol)
    fitted = _reindent(body.split("\n"), core.split("\n"), prefix)
    out = lead + "\n".join(fitted) + trail
    return out.replace("\n", eol) if eol != "\n" else out


def _reindent(code: list[str], selected: list[str], prefix: str) -> list[str]:
    if prefix.strip():
        # The selection starts in the middle of a line: its first line's indentation is not
        # known, so the base indentation comes from the other lines, and the first line of the
        # code is used as it is.
        base = common_margin(selected[1:])
        if len(code) > 1 and base and not common_margin(code[1:]):
            return [code[0], *_indented(code[1:], base)]
        return code
    base = common_margin([prefix + selected[0], *selected[1:]])
    first_indent = _indent_of(code[0])
    rest = [line for line in code[1:] if line.strip()]
    if prefix and not first_indent and rest:
        # Either the code is shaped like the selection (its first line starts after the
        # indentation, as the selection does) or it was dedented as a whole. Pick the reading
        # that keeps the first line's depth relative to the next lines, as in the selection.
        code_rest = min(len(_indent_of(line)) for line in rest)
        selected_rest = [line for line in selected[1:] if line.strip()]
        if selected_rest:
            wanted = min(len(_indent_of(line)) for line in selected_rest) - len(prefix)
            dedented = abs(code_rest - wanted) < abs(code_rest - len(prefix) - wanted)
        else:
            dedented = code_rest < len(base)
        if not dedented:
            return code
        return _cut_first(_indented(code, base), prefix)
    if base and not common_margin(code):
        code = _indented(code, base)
    return _cut_first(code, prefix)


def _cut_first(lines: list[str], prefix: str) -> list[str]:
    """Drop from the first line the indentation the document keeps before the selection."""
    if not prefix:
        return lines
    first = lines[0]
    cut = min(len(prefix), len(_indent_of(first)))
    return [first[cut:], *lines[1:]]


def _indented(lines: list[str], margin: str) -> list[str]:
    return [margin + line if line.strip() else line for line in lines]


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def common_margin(lines: list[str]) -> str:
    """The indentation every non-blank line starts with."""
    indents = [_indent_of(line) for line in lines if line.strip()]
    if not indents:
        return ""
    margin = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(margin):
            margin = margin[:-1]
    return margin


def _trim_blank_lines(code: str) -> str:
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip("\r") for line in lines)


def _strip_spaces(line: str, most: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, most):]


# -- generated test files --------------------------------------------------------------------------


def safe_relative_path(text: str) -> str | None:
    """``text`` as a normalised relative POSIX path that stays inside its base, else None."""
    candidate = text.strip().replace("\\", "/")
    if not candidate or candidate.startswith("/") or re.match(r"^[A-Za-z]:", candidate) \
            or any(ord(c) < 32 for c in candidate):
        return None
    parts = [part for part in PurePosixPath(candidate).parts if part not in ("", ".")]
    if not parts or ".." in parts or parts[-1].startswith("."):
        return None
    return "/".join(parts)


def suggested_test_path(answer: str, source_path: str | None) -> str:
    """Where the test file of a "tests" answer goes, relative to the workspace folder.

    The path the answer says to save it as, when that is a safe relative path with the source's
    suffix (``.py`` by default); else ``tests/test_<module><suffix>`` for the source file.
    """
    source = PurePosixPath(source_path) if source_path else None
    suffix = source.suffix if source is not None and source.suffix else ".py"
    for match in _SAVE_AS.finditer(answer):
        named = safe_relative_path(match.group(2))
        if named is not None and PurePosixPath(named).suffix == suffix:
            return named
    stem = source.stem if source is not None and source.stem else "module"
    stem = re.sub(r"\W", "_", stem) or "module"
    return f"tests/test_{stem.removeprefix('test_')}{suffix}"


def first_free(path: str, taken: Callable[[str], bool], most: int = 100) -> str | None:
    """``path`` if it is free, else ``<stem>_2<suffix>``, ``_3``, ... (None after ``most``)."""
    if not taken(path):
        return path
    pure = PurePosixPath(path)
    for number in range(2, most + 1):
        candidate = str(pure.with_name(f"{pure.stem}_{number}{pure.suffix}"))
        if not taken(candidate):
            return candidate
    return None
