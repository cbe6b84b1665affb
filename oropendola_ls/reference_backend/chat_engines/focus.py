"""The code a request is about (the selection, else the active file) and Markdown helpers.

A selection is widened to whole lines when the file's content is known, so its first line keeps
its indentation and its place in the file; the common indentation is then removed, so a method
selected inside a class parses on its own. `FocusCode.replacement` puts a rewritten version
back into the selection's shape: a client can replace the selection with it as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from oropendola_ls.answer_edits import common_margin
from oropendola_ls.reference_backend import analysis
from oropendola_ls.reference_backend.chat_engines.base import ChatContext
from oropendola_ls.reference_backend.source_text import language_for_path, valid_unicode

_LINE_BREAKS = re.compile(r"\r\n|\r")
_SHELL_LANGUAGES = frozenset({"shellscript", "sh", "bash", "zsh", "shell", "console", "fish"})
MAX_QUOTED_PROMPT = 1000


@dataclass(frozen=True, slots=True)
class FocusCode:
    text: str
    """Whole lines, ``\\n``-separated, common indentation removed."""
    kind: Literal["selection", "file"]
    path: str | None
    language: str | None
    first_line: int | None
    """The 1-based file line of ``text``'s first line, when known."""
    margin: str
    """The indentation removed from every line."""
    first_line_cut: int
    """How many characters of the first line's indentation the selection leaves out."""

    @property
    def is_python(self) -> bool:
        return analysis.is_python(self.path, self.language)

    @property
    def line_count(self) -> int:
        return len(self.text.split("\n"))

    @property
    def where(self) -> str:
        """``the selection`` or ```path``` / ``the file``."""
        if self.kind == "selection":
            return "the selection"
        return f"`{self.path}`" if self.path else "the file"

    def line_label(self, line: int) -> str:
        """``line N`` in the file, or ``line N of the selection`` when its place is unknown."""
        if self.first_line is not None:
            return f"line {self.first_line + line - 1}"
        return f"line {line} of the selection"

    def replacement(self, code: str) -> str:
        """``code`` (a rewrite of ``text``) indented back into the selection's shape."""
        lines = [self.margin + line if line.strip() else "" for line in code.split("\n")]
        out = "\n".join(lines)
        return out[self.first_line_cut:] if out[:self.first_line_cut].isspace() else out


def normalise(text: str) -> str:
    return _LINE_BREAKS.sub("\n", valid_unicode(text)).removeprefix("\ufeff")


def _dedent(lines: list[str], margin: str) -> str:
    return "\n".join(line[len(margin):] if line.strip() else "" for line in lines)


def _place(content: str, selection: str, cursor_offset: int | None) -> int:
    """Where ``selection`` is in ``content`` (the occurrence holding the cursor, else the first)."""
    first = content.find(selection)
    if cursor_offset is None or first < 0:
        return first
    index = first
    for _ in range(1000):
        if index <= cursor_offset <= index + len(selection):
            return index
        index = content.find(selection, index + 1)
        if index < 0:
            break
    return first


def _offset(content: str, line: int, character: int) -> int:
    lines = content.split("\n")
    if line >= len(lines):
        return len(content)
    return sum(len(text) + 1 for text in lines[:line]) + min(character, len(lines[line]))


def focus_code(context: ChatContext) -> FocusCode | None:
    """The selection (widened to whole lines when the content shows where it is), else the file."""
    active = context.active_file
    if active is None:
        return None
    path = active.display_path
    language = active.language or (language_for_path(path) if path else None)
    content = normalise(active.content) if active.content else None
    selection = normalise(active.selected_text) if active.selected_text else None
    if selection is not None and selection.strip():
        selection = selection.strip("\n")
        cut = 0
        first_line: int | None = None
        lines = selection.split("\n")
        if content is not None:
            cursor = active.cursor
            cursor_offset = None if cursor is None else _offset(content, cursor.line,
                                                                cursor.character)
            index = _place(content, selection, cursor_offset)
            if index >= 0:
                line_start = content.rfind("\n", 0, index) + 1
                before = content[line_start:index]
                first_line = content.count("\n", 0, line_start) + 1
                if not before.strip():
                    cut = len(before)
                    lines[0] = before + lines[0]
        margin = common_margin(lines)
        return FocusCode(_dedent(lines, margin), "selection", path, language, first_line,
                         margin, cut)
    if content is not None and content.strip():
        lines = content.split("\n")
        if lines and not lines[-1]:
            lines.pop()
        margin = common_margin(lines)
        return FocusCode(_dedent(lines, margin), "file", path, language, 1, margin, 0)
    return None


# -- Markdown ------------------------------------------------------------------------------------


def fence(code: str, language: str = "") -> str:
    """``code`` in a fenced block whose fence is longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{code.rstrip(chr(10))}\n{ticks}"


def snippet_language(language: str | None) -> str:
    """The info string for quoting code: never a shell one (those become "Run" actions)."""
    if not language or language.lower() in _SHELL_LANGUAGES:
        return "text"
    return language


def quote(text: str, most: int = MAX_QUOTED_PROMPT) -> str:
    """``text`` as a Markdown block quote, cut after ``most`` characters."""
    shown = text.strip()
    if len(shown) > most:
        shown = shown[:most].rstrip() + " …"
    return "\n".join(f"> {line}" if line.strip() else ">" for line in shown.split("\n"))


def code_span(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def names_list(names: list[str], most: int = 12) -> str:
    """`a`, `b` and 3 more."""
    shown = [code_span(name) for name in names[:most]]
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")
