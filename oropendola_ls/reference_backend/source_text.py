"""Source text as editors see it: lines, valid Unicode, and a language guessed from a path.

Shared by the code index and the file analyser so both number lines the way LSP does.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

_LANGUAGE_BY_SUFFIX = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".sh": "shellscript",
    ".bash": "shellscript",
    ".html": "html",
    ".css": "css",
    ".scss": "scss",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".md": "markdown",
    ".rst": "restructuredtext",
    ".sql": "sql",
    ".txt": "plaintext",
}
"""File suffix → LSP language identifier, for files sent without a language."""


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` split at ``\\r\\n``, ``\\r`` or ``\\n`` (LSP's line breaks).

    Like an editor, a text ending with a line break has an empty last line, and ``""`` is one
    empty line. Unlike `str.splitlines`, form feeds and Unicode separators do not break lines.
    """
    return _LINE_BREAK.split(text)


def valid_unicode(text: str) -> str:
    """``text`` with each unpaired surrogate (JSON allows ``"\\ud800"``) replaced by U+FFFD.

    One code point replaces one, so lines and columns are unchanged; SQLite and `ast` accept
    only encodable text.
    """
    return _LONE_SURROGATE.sub("\ufffd", text)


def language_for_path(path: str) -> str | None:
    """The LSP language identifier for ``path``'s suffix, or None when it is not a known one."""
    return _LANGUAGE_BY_SUFFIX.get(PurePosixPath(path).suffix.lower())
