"""The language of a file, from its name: the ``language`` field of each indexed file.

Ids are LSP's ``languageId`` values (``typescriptreact``, ``shellscript``), as editors send them
and as the reference backend reads them.
"""

from __future__ import annotations

PLAINTEXT = "plaintext"

_BY_SUFFIX: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala",
    ".swift": "swift",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".sh": "shellscript", ".bash": "shellscript", ".zsh": "shellscript", ".fish": "fish",
    ".ps1": "powershell",
    ".lua": "lua",
    ".pl": "perl", ".pm": "perl",
    ".r": "r",
    ".dart": "dart",
    ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang",
    ".hs": "haskell",
    ".clj": "clojure",
    ".el": "emacs-lisp",
    ".vim": "vim",
    ".md": "markdown", ".markdown": "markdown",
    ".rst": "restructuredtext",
    ".txt": PLAINTEXT,
    ".json": "json", ".jsonc": "json",
    ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini",
    ".xml": "xml", ".svg": "xml",
    ".html": "html", ".htm": "html",
    ".css": "css", ".scss": "scss", ".sass": "sass", ".less": "less",
    ".vue": "vue", ".svelte": "svelte",
    ".sql": "sql",
    ".graphql": "graphql", ".gql": "graphql",
    ".proto": "protobuf",
    ".tf": "terraform",
    ".gradle": "groovy", ".groovy": "groovy",
    ".cmake": "cmake",
    ".mk": "makefile",
    ".dockerfile": "dockerfile",
    ".ipynb": "json",
}
_BY_NAME: dict[str, str] = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "jenkinsfile": "groovy",
    ".bashrc": "shellscript",
    ".zshrc": "shellscript",
    ".profile": "shellscript",
    ".gitignore": "ignore",
    ".oropendolaignore": "ignore",
    ".dockerignore": "ignore",
}


def language_of(relpath: str) -> str:
    """The language id for a ``/``-separated path: ``src/app.tsx`` → ``typescriptreact``; unknown →
    ``plaintext``."""
    name = relpath.rpartition("/")[2].lower()
    by_name = _BY_NAME.get(name)
    if by_name is not None:
        return by_name
    dot = name.rfind(".")
    if dot <= 0:
        return PLAINTEXT
    return _BY_SUFFIX.get(name[dot:], PLAINTEXT)
