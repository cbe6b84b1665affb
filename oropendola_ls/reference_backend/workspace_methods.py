"""Workspace index, search and memory, and file upload and analysis (protocol.md §2.10-2.11).

The index is `search_index.SearchIndex` (SQLite FTS5, per user and workspace); analysis is
`analysis.analyze` (real static checks). Both run off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from oropendola_ls.reference_backend import analysis, frappe
from oropendola_ls.reference_backend.arguments import (
    bool_value,
    current_user,
    int_arg,
    maybe_json,
    text_arg,
)
from oropendola_ls.reference_backend.context import CallContext
from oropendola_ls.reference_backend.search_index import SourceFile, check_workspace_id
from oropendola_ls.reference_backend.source_text import split_lines

MAX_INDEX_FILES = 2000
MAX_INDEX_BYTES = 32 * 1024 * 1024
MAX_REMOVED_PATHS = 10_000
MAX_NAME_CHARS = 200
MAX_QUERY_CHARS = 10_000
DEFAULT_SEARCH_LIMIT = 10
MAX_SEARCH_LIMIT = 100
RECENT_CONVERSATIONS = 10
TITLE_CHARS = 80
DEFAULT_WORKSPACE = "default"
MAX_ANALYZE_BYTES = 5 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _optional_text(ctx: CallContext, name: str, most: int) -> str | None:
    """A string argument of at most ``most`` characters, or None when absent or empty."""
    value = ctx.form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise frappe.ValidationError(f"{name} must be a string, not {value!r}")
    if len(value) > most:
        raise frappe.ValidationError(f"{name} must be at most {most} characters long")
    return value


def _workspace_id(ctx: CallContext) -> str | None:
    value = ctx.form.get("workspace_id")
    if value is None or value == "":
        return None
    try:
        return check_workspace_id(value)
    except ValueError as exc:
        raise frappe.ValidationError(str(exc)) from None


def _indexed_workspace(ctx: CallContext) -> tuple[str, str | None]:
    """The workspace id and name to index under.

    The seed extension sends only ``workspace_path``: its id is then derived from the path.
    """
    name = _optional_text(ctx, "workspace_name", MAX_NAME_CHARS)
    workspace_id = _workspace_id(ctx)
    if workspace_id is not None:
        return workspace_id, name
    workspace_path = _optional_text(ctx, "workspace_path", 4096)
    if workspace_path is None:
        return DEFAULT_WORKSPACE, name
    digest = hashlib.sha256(workspace_path.encode("utf-8", "surrogatepass")).hexdigest()
    folder = workspace_path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return f"path-{digest[:16]}", name or folder[:MAX_NAME_CHARS] or None


def _list_argument(ctx: CallContext, name: str) -> list[Any]:
    value = maybe_json(ctx.form.get(name))
    if value is None or value == "":
        return []
    if not isinstance(value, list):
        raise frappe.ValidationError(f"{name} must be a list, not {type(value).__name__}")
    return value


def _symbols_text(symbols: object, where: str) -> str:
    """A file sent as the seed extension sends it (symbols, no content): one name per line."""
    if symbols is None:
        return ""
    if not isinstance(symbols, list):
        raise frappe.ValidationError(f"{where}.symbols must be a list")
    names: list[str] = []
    for symbol in symbols:
        name = symbol.get("name") if isinstance(symbol, dict) else symbol
        if not isinstance(name, str):
            raise frappe.ValidationError(
                f"{where}.symbols must hold names or {{name}} objects, not {symbol!r}"
            )
        names.append(name)
    return "\n".join(names)


def _source_file(entry: object, where: str) -> SourceFile:
    if not isinstance(entry, dict):
        raise frappe.ValidationError(f"{where} must be an object with path and content")
    path, language, content = entry.get("path"), entry.get("language"), entry.get("content")
    if not isinstance(path, str):
        raise frappe.ValidationError(f"{where}.path must be a string, not {path!r}")
    if language is not None and not (isinstance(language, str) and len(language) <= 64):
        raise frappe.ValidationError(f"{where}.language must be a string of at most 64 characters")
    if content is None:
        content = _symbols_text(entry.get("symbols"), where)
    elif not isinstance(content, str):
        raise frappe.ValidationError(f"{where}.content must be the file's text")
    sha256, size = entry.get("sha256"), entry.get("size")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise frappe.ValidationError(f"{where}.sha256 must be 64 hexadecimal digits")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise frappe.ValidationError(f"{where}.size must be a non-negative integer")
    return SourceFile(path, content, language or None)


def _files_to_index(ctx: CallContext) -> list[SourceFile]:
    entries = _list_argument(ctx, "files")
    if len(entries) > MAX_INDEX_FILES:
        raise frappe.ValidationError(
            f"{len(entries)} files in one call is too many: send at most {MAX_INDEX_FILES} per call"
        )
    files = [_source_file(entry, f"files[{i}]") for i, entry in enumerate(entries)]
    total = 0
    for file in files:
        total += len(file.content.encode("utf-8", "surrogatepass"))
        if total > MAX_INDEX_BYTES:
            raise frappe.ValidationError(
                f"the files of one call must hold at most {MAX_INDEX_BYTES // 2**20} MiB of "
                "content: send them in smaller batches"
            )
    return files


async def workspace_index(ctx: CallContext) -> object:
    email = current_user(ctx).email
    workspace_id, name = _indexed_workspace(ctx)
    files = _files_to_index(ctx)
    removed = _list_argument(ctx, "removed")
    if len(removed) > MAX_REMOVED_PATHS or not all(isinstance(p, str) for p in removed):
        raise frappe.ValidationError(
            f"removed must be a list of at most {MAX_REMOVED_PATHS} file paths"
        )
    force_rebuild = bool_value(ctx.form.get("force_rebuild") or False, "force_rebuild")
    try:
        outcome = await asyncio.to_thread(
            ctx.store.search_index.index, email, workspace_id, files,
            removed=removed, name=name, force_rebuild=force_rebuild,
        )
    except ValueError as exc:
        raise frappe.ValidationError(str(exc)) from None
    return outcome.to_json()


async def workspace_search(ctx: CallContext) -> object:
    email = current_user(ctx).email
    query = _optional_text(ctx, "query", MAX_QUERY_CHARS) or ""
    limit = int_arg(ctx, "limit", DEFAULT_SEARCH_LIMIT, 1, MAX_SEARCH_LIMIT)
    workspace_id = _workspace_id(ctx)
    hits = (
        await asyncio.to_thread(
            ctx.store.search_index.search, email, query, limit=limit, workspace_id=workspace_id
        )
        if query.strip() else []
    )
    return {"success": True, "data": {"results": [hit.to_json() for hit in hits]}}


def _iso_utc(frappe_timestamp: str) -> str:
    """A stored ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC time as ISO 8601 (``...T...Z``)."""
    try:
        moment = datetime.strptime(frappe_timestamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return frappe_timestamp
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _title(first_prompt: str) -> str:
    title = " ".join(first_prompt.split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"


async def workspace_get_memory(ctx: CallContext) -> object:
    email = current_user(ctx).email
    workspaces = ctx.store.search_index.workspaces(email, _workspace_id(ctx))
    conversations = ctx.store.recent_conversations(email, RECENT_CONVERSATIONS)
    return {
        "success": True,
        "workspaces": [workspace.to_json() for workspace in workspaces],
        "recent_conversations": [
            {
                "conversation_id": c.conversation_id,
                "title": _title(c.first_prompt),
                "updated": _iso_utc(c.updated),
            }
            for c in conversations
        ],
    }


async def files_upload(ctx: CallContext) -> object:
    upload = ctx.files.get("file") or next(iter(ctx.files.values()), None)
    if upload is None:
        raise frappe.ValidationError("No file attached: send multipart form data with a 'file'")
    return {
        "success": True,
        "data": {
            "document_id": "doc-" + hashlib.sha256(upload.data).hexdigest()[:16],
            "filename": upload.filename,
            "size": len(upload.data),
            "status": "received",
        },
    }


def _analysis_summary(characters: int, lines: int, findings: Sequence[analysis.Finding]) -> str:
    counts = {severity: 0 for severity in ("error", "warning", "info", "hint")}
    for finding in findings:
        counts[finding.severity] += 1
    found = ", ".join(f"{count} {severity}" for severity, count in counts.items())
    return (
        f"{characters} characters in {lines} lines; findings: {found} "
        "(static checks only: the reference backend has no AI model)"
    )


async def files_analyze(ctx: CallContext) -> object:
    content = ctx.form.get("content")
    if content is None:
        raise frappe.ValidationError("content is required")
    if not isinstance(content, str):
        raise frappe.ValidationError("content must be the file's text")
    if len(content.encode("utf-8", "surrogatepass")) > MAX_ANALYZE_BYTES:
        raise frappe.ValidationError(
            f"content is larger than {MAX_ANALYZE_BYTES // 2**20} MiB: too large to analyse"
        )
    metadata = maybe_json(ctx.form.get("metadata"))  # documents.analyze's shape
    described = metadata if isinstance(metadata, dict) else {}
    path = _optional_text(ctx, "path", 4096) or described.get("file_path")
    language = _optional_text(ctx, "language", 64) or described.get("language")
    path = path if isinstance(path, str) else None
    language = language if isinstance(language, str) else None
    analysis_type = text_arg(ctx, "analysis_type") or "summary"
    findings = await asyncio.to_thread(analysis.analyze, path, content, language)
    lines = len(split_lines(content)) if content else 0
    if content.endswith(("\n", "\r")):
        lines -= 1  # the empty line after the last line break
    return {
        "success": True,
        "data": {
            "status": "completed",
            "analysis_type": analysis_type,
            "result": {
                "characters": len(content),
                "lines": lines,
                "language": "python" if analysis.is_python(path, language) else language,
                "summary": _analysis_summary(len(content), lines, findings),
            },
            "findings": [finding.to_json() for finding in findings],
        },
    }
