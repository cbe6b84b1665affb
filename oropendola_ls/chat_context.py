"""What a chat sends about the code: the active file, the selection or the lines around the
cursor, the workspace, the action — size-capped, and never a secret.

Plain code (no LSP). A file that holds secrets (`secrets.secret_file_kind`) contributes its
name only; all text that is sent passes through `secrets.redact_secrets` first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from oropendola_ls.secrets import redact_secrets, secret_file_kind

MAX_SELECTION_CHARS = 20_000
MAX_FILE_CHARS = 100_000
CURSOR_WINDOW = 40
"""Lines on each side of the cursor sent when nothing is selected."""


@attrs.frozen
class Position:
    line: int
    character: int


@attrs.frozen
class Finding:
    """A diagnostic the action is about; lines are 1-based as the backend reads them."""

    message: str
    start_line: int
    end_line: int
    rule: str | None = None


@attrs.frozen
class DocumentView:
    """The document a chat is about, as the editor has it."""

    text: str
    relative_path: str
    language: str | None = None
    path: str | None = None
    selection: tuple[Position, Position] | None = None
    cursor: Position | None = None


@attrs.define
class Context:
    body: dict[str, Any]
    redactions: Counter[str] = attrs.Factory(Counter)
    withheld: str | None = None
    """Why the file's text was left out (a secret file), if it was."""


def _offset(lines: Sequence[str], position: Position) -> int:
    line = min(max(position.line, 0), len(lines))
    return sum(len(text) for text in lines[:line]) + min(
        max(position.character, 0), len(lines[line]) if line < len(lines) else 0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n… (cut: too long to send)"


def build_context(
    document: DocumentView | None,
    *,
    workspace: str | None = None,
    workspace_id: str | None = None,
    action: str | None = None,
    findings: Sequence[Finding] = (),
) -> Context:
    """The ``context`` object of ``chat.send_message``.

    The selection (or, without one, the lines around the cursor) goes in ``selectedText``;
    actions on code also get the whole file (capped) so the backend can see imports and
    callers. Positions are the editor's 0-based lines and characters (code points).
    """
    body: dict[str, Any] = {}
    context = Context(body)
    if workspace:
        body["workspace"] = workspace
    if workspace_id:
        body["workspace_id"] = workspace_id
    if action:
        body["action"] = action
    if document is not None:
        body["activeFile"] = _active_file(document, context, with_content=action is not None)
    if findings:
        body["diagnostics"] = [
            {"message": _redacted(f.message, context), "startLine": f.start_line,
             "endLine": f.end_line, **({"rule": f.rule} if f.rule else {})}
            for f in findings
        ]
    return context


def _active_file(document: DocumentView, context: Context, *, with_content: bool
                 ) -> dict[str, Any]:
    active: dict[str, Any] = {"relativePath": document.relative_path,
                              "path": document.path or document.relative_path}
    if document.language:
        active["language"] = document.language
    kind = secret_file_kind(document.relative_path)
    if kind is not None:
        context.withheld = f"{document.relative_path} holds secrets ({kind}): its text is not sent"
        active["withheld"] = "secret file"
        return active
    lines = document.text.splitlines(keepends=True)
    active["lineCount"] = len(lines)
    if document.cursor is not None:
        active["cursorPosition"] = {"line": document.cursor.line,
                                    "character": document.cursor.character}
    if document.selection is not None and document.selection[0] != document.selection[1]:
        start, end = sorted(document.selection, key=lambda p: (p.line, p.character))
        selected = document.text[_offset(lines, start):_offset(lines, end)]
        active["selectedText"] = _redacted(_clip(selected, MAX_SELECTION_CHARS), context)
        active["selection"] = {"startLine": start.line + 1, "endLine": end.line + 1}
    elif document.cursor is not None:
        first = max(0, document.cursor.line - CURSOR_WINDOW)
        around = "".join(lines[first:document.cursor.line + CURSOR_WINDOW + 1])
        active["selectedText"] = _redacted(_clip(around, MAX_SELECTION_CHARS), context)
        active["selection"] = {"startLine": first + 1,
                               "endLine": min(len(lines), document.cursor.line + CURSOR_WINDOW + 1)}
    if with_content:
        active["content"] = _redacted(_clip(document.text, MAX_FILE_CHARS), context)
    return active


def _redacted(text: str, context: Context) -> str:
    clean, counts = redact_secrets(text)
    context.redactions.update(counts)
    return clean
