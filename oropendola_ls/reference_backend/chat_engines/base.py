"""What every chat engine gets and gives: the request, its editor context, and text deltas.

An engine turns a `ChatRequest` (the prompt, the conversation so far, the editor `ChatContext`
and a read-only view of the user's workspace index) into an async iterator of text deltas whose
concatenation is the answer. The caller may stop at any ``await``: the iterator is then closed
(or its task cancelled), and an engine must release what it holds (an upstream connection) at
once. A failure is raised as `EngineError`, whose message can be shown to the user as it is.

The editor context is the object the LSP client (and the published extension) sends as
``context``; `parse_context` reads it from a JSON object or a JSON string, ignores unknown keys
and raises `ContextError` for a known key with a wrong value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from oropendola_ls.reference_backend.search_index import SearchHit, SearchIndex, check_workspace_id

Action = Literal["explain", "fix", "improve", "document", "tests"]
ACTIONS: tuple[Action, ...] = get_args(Action)
MAX_DIAGNOSTICS = 1000
MAX_TEXT_DELTAS = 64
"""An answer that is ready at once is streamed a few words per delta, at most this many."""
_DELTA_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


class ContextError(ValueError):
    """The request's ``context`` is not the documented shape (answered as an in-band 400)."""


class EngineError(Exception):
    """An engine could not answer; ``str(error)`` is safe to show (no secrets)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Cursor:
    line: int
    """0-based, as LSP counts."""
    character: int


@dataclass(frozen=True, slots=True)
class ActiveFile:
    path: str | None = None
    relative_path: str | None = None
    language: str | None = None
    content: str | None = None
    selected_text: str | None = None
    cursor: Cursor | None = None

    @property
    def display_path(self) -> str | None:
        return self.relative_path or self.path


@dataclass(frozen=True, slots=True)
class Diagnostic:
    message: str
    rule: str | None
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class ChatContext:
    """The editor context of one chat request (all optional)."""

    workspace: str | None = None
    workspace_id: str | None = None
    active_file: ActiveFile | None = None
    action: Action | None = None
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    role: str
    """``user`` or ``assistant``."""
    content: str


class WorkspaceLookup(Protocol):
    """The asking user's workspace index (narrowed to the context's workspace, if it names one).

    Both methods block (SQLite): call them from a worker thread.
    """

    def search(self, query: str, limit: int) -> list[SearchHit]: ...

    def languages(self) -> dict[str, int]:
        """Indexed files per language; empty when nothing is indexed."""
        ...


@dataclass(frozen=True, slots=True)
class IndexLookup:
    """`WorkspaceLookup` over the search index, for one user (and one workspace, if given)."""

    index: SearchIndex
    user: str
    workspace_id: str | None = None

    def search(self, query: str, limit: int) -> list[SearchHit]:
        return self.index.search(self.user, query, limit=limit, workspace_id=self.workspace_id)

    def languages(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for workspace in self.index.workspaces(self.user, self.workspace_id):
            for language, count in workspace.languages.items():
                counts[language] = counts.get(language, 0) + count
        return counts


@dataclass(frozen=True, slots=True)
class ChatRequest:
    prompt: str
    history: tuple[HistoryEntry, ...] = ()
    """Earlier messages of the conversation, oldest first (without this prompt)."""
    context: ChatContext = field(default_factory=ChatContext)
    workspace: WorkspaceLookup | None = None


class ChatEngine(Protocol):
    """Something that answers chat requests."""

    @property
    def model(self) -> str:
        """The model name reported with each answer."""
        ...

    @property
    def paced(self) -> bool:
        """True when answers are ready at once and their streaming is simulated.

        The chat handler then spaces the deltas by the backend's ``ChatPacing`` interval; a
        model's deltas are passed on as they arrive.
        """
        ...

    def answer(self, request: ChatRequest) -> AsyncIterator[str]:
        """The answer as text deltas; raises `EngineError` when it cannot answer."""
        ...


def text_deltas(reply: str, most: int = MAX_TEXT_DELTAS) -> list[str]:
    """``reply`` cut after whitespace, a word (or a few) per piece; the pieces join to ``reply``."""
    words = [word for word in _DELTA_BOUNDARY.split(reply) if word]
    per_delta = max(1, math.ceil(len(words) / most))
    return ["".join(words[i:i + per_delta]) for i in range(0, len(words), per_delta)]


# -- reading the context ---------------------------------------------------------------------------


def parse_context(value: object) -> ChatContext:
    """The `ChatContext` in ``value``: a JSON object, a string holding one, or nothing.

    The accepted shape (unknown keys are ignored at every level)::

        {workspace?: str, workspace_id?: str,
         activeFile?: {path?, relativePath?, language?, content?, selectedText?: str,
                       cursorPosition?: {line: int, character: int}},
         action?: "explain"|"fix"|"improve"|"document"|"tests",
         diagnostics?: [{message: str, rule?: str, startLine: int, endLine: int}]}
    """
    if isinstance(value, str):
        if not value.strip():
            return ChatContext()
        try:
            value = json.loads(value)
        except ValueError:
            raise ContextError("context must be a JSON object (or a string holding one)") from None
    if value is None:
        return ChatContext()
    if not isinstance(value, Mapping):
        raise ContextError(f"context must be a JSON object, not {_json_type(value)}")
    workspace_id = _text(value, "workspace_id", "context")
    if workspace_id is not None:
        try:
            check_workspace_id(workspace_id)
        except ValueError as exc:
            raise ContextError(f"context.{exc}") from None
    return ChatContext(
        workspace=_text(value, "workspace", "context"),
        workspace_id=workspace_id,
        active_file=_active_file(value.get("activeFile")),
        action=_action(value.get("action")),
        diagnostics=_diagnostics(value.get("diagnostics")),
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _text(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContextError(f"{where}.{key} must be a string, not {_json_type(value)}")
    return value


def _integer(obj: Mapping[str, Any], key: str, where: str, *, required: bool) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContextError(f"{where}.{key} must be a non-negative integer, not {value!r}")
    return value


def _active_file(value: object) -> ActiveFile | None:
    where = "context.activeFile"
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ContextError(f"{where} must be an object, not {_json_type(value)}")
    cursor_value = value.get("cursorPosition")
    cursor: Cursor | None = None
    if cursor_value is not None:
        if not isinstance(cursor_value, Mapping):
            raise ContextError(f"{where}.cursorPosition must be an object {{line, character}}")
        line = _integer(cursor_value, "line", f"{where}.cursorPosition", required=True)
        character = _integer(cursor_value, "character", f"{where}.cursorPosition", required=True)
        assert line is not None and character is not None
        cursor = Cursor(line, character)
    return ActiveFile(
        path=_text(value, "path", where),
        relative_path=_text(value, "relativePath", where),
        language=_text(value, "language", where),
        content=_text(value, "content", where),
        selected_text=_text(value, "selectedText", where),
        cursor=cursor,
    )


def _action(value: object) -> Action | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        wanted = value.strip().lower()
        for action in ACTIONS:
            if action == wanted:
                return action
    raise ContextError(f"context.action must be one of {', '.join(ACTIONS)}, not {value!r}")


def _diagnostics(value: object) -> tuple[Diagnostic, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ContextError(f"context.diagnostics must be a list, not {_json_type(value)}")
    if len(value) > MAX_DIAGNOSTICS:
        raise ContextError(f"context.diagnostics holds {len(value)} entries; at most "
                           f"{MAX_DIAGNOSTICS} are accepted")
    found: list[Diagnostic] = []
    for index, entry in enumerate(value):
        where = f"context.diagnostics[{index}]"
        if not isinstance(entry, Mapping):
            raise ContextError(f"{where} must be an object {{message, rule?, startLine, endLine}}")
        message = _text(entry, "message", where)
        if message is None:
            raise ContextError(f"{where}.message is required")
        start = _integer(entry, "startLine", where, required=True)
        end = _integer(entry, "endLine", where, required=False)
        assert start is not None
        found.append(Diagnostic(message, _text(entry, "rule", where), start,
                                start if end is None else max(start, end)))
    return tuple(found)


