"""The workspace code index: each user's files, cut into line chunks, searched with SQLite FTS5.

It lives in ``<data_dir>/search_index.sqlite3``, beside the Store's database rather than in it:
an index call writes thousands of rows in one transaction, and a file of its own keeps that
write from holding the lock that sign-in and chat need; it can also be deleted to start over
without losing any account.

Chunks. A file is cut into runs of at most `CHUNK_LINES` lines, shorter when the run would pass
`CHUNK_CHARS` characters (a line is never split). Chunks do not overlap, so a line belongs to
one chunk and a search never returns the same line twice.

Terms. Text is indexed as terms, not as written: every identifier (a run of word characters)
gives its case-folded self and, when it is compound (``snake_case``, ``camelCase``,
``HTTPServer``), its case-folded parts. The FTS table's ``ascii`` tokenizer, with ``_`` as a
token character, keeps each of those terms one token. Queries go through the same function and
reach FTS5 only as quoted terms made of word characters joined with OR, so no user text can be
an FTS5 syntax error, and BM25 ranks chunks holding more of the terms higher. A search for
``parseConfig`` finds ``parse_config`` through the parts, below an exact ``parseConfig``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oropendola_ls.reference_backend.database import Database
from oropendola_ls.reference_backend.source_text import (
    language_for_path,
    split_lines,
    valid_unicode,
)

DB_FILENAME = "search_index.sqlite3"
SCHEMA_VERSION = 1
CHUNK_LINES = 40
CHUNK_CHARS = 8000
MAX_QUERY_TERMS = 64
SNIPPET_CHARS = 300
MATCH_GAP = 2
MATCH_SPAN = 6
UNKNOWN_LANGUAGE = "plaintext"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    last_indexed TEXT NOT NULL,
    UNIQUE (user, workspace_id)
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    workspace INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    language TEXT,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    UNIQUE (workspace, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    file INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(
    terms, tokenize = "ascii tokenchars '_'"
);
CREATE TRIGGER IF NOT EXISTS chunks_forget_terms AFTER DELETE ON chunks BEGIN
    DELETE FROM chunk_terms WHERE rowid = old.id;
END;
"""

_WORKSPACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
_IDENTIFIER = re.compile(r"\w+")
MAX_PATH_CHARS = 4096


# -- validation ----------------------------------------------------------------------------------


def check_workspace_id(workspace_id: str) -> str:
    """``workspace_id`` if it is 1-100 of ``A-Z a-z 0-9 . _ : -``; else `ValueError`."""
    if not isinstance(workspace_id, str) or not _WORKSPACE_ID.fullmatch(workspace_id):
        raise ValueError(
            f"workspace_id must be 1-100 characters of letters, digits, '.', '_', ':' or '-', "
            f"not {workspace_id!r}"
        )
    return workspace_id


def check_path(path: str) -> str:
    """``path`` if it is a relative POSIX path in canonical form; else `ValueError`."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a file path must be a non-empty string, not {path!r}")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"file path {path[:80]!r}... is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in path:
        raise ValueError(f"file path {path!r} contains a NUL character")
    if path.startswith("/"):
        raise ValueError(f"file path {path!r} must be relative to the workspace (no leading '/')")
    segments = path.split("/")
    if ".." in segments:
        raise ValueError(f"file path {path!r} must not contain '..' segments")
    if "" in segments or "." in segments:
        raise ValueError(f"file path {path!r} must not contain empty or '.' segments")
    return path


# -- terms ---------------------------------------------------------------------------------------


def _split_compound(identifier: str) -> list[str]:
    """``parse_HTTPResponse2Body`` → ``parse HTTP Response2 Body``; ``URLs`` stays whole."""
    parts: list[str] = []
    for piece in identifier.split("_"):
        start = 0
        for i in range(1, len(piece)):
            before, here = piece[i - 1], piece[i]
            after = piece[i + 1] if i + 1 < len(piece) else ""
            starts_word = after.islower() and piece[i + 2 : i + 3].islower()  # not "URLs"
            if here.isupper() and (
                before.islower() or before.isdigit() or (before.isupper() and starts_word)
            ):
                parts.append(piece[start:i])
                start = i
        if piece:
            parts.append(piece[start:])
    return parts


@functools.lru_cache(maxsize=65536)
def _identifier_terms(identifier: str) -> tuple[str, ...]:
    whole = identifier.casefold()
    parts = [part.casefold() for part in _split_compound(identifier)]
    return (whole, *dict.fromkeys(part for part in parts if part != whole))


def terms(text: str) -> list[str]:
    """The index terms of ``text``, in order, with repeats (BM25 counts them)."""
    found: list[str] = []
    for match in _IDENTIFIER.finditer(unicodedata.normalize("NFC", text)):
        found.extend(_identifier_terms(match.group()))
    return found


def query_terms(query: str) -> list[str]:
    """The distinct terms of a search query, first `MAX_QUERY_TERMS` of them."""
    return list(dict.fromkeys(terms(query)))[:MAX_QUERY_TERMS]


def fts_query(wanted: Sequence[str]) -> str:
    """An FTS5 query matching any of ``wanted`` (word characters only, so quoting is enough)."""
    return " OR ".join(f'"{term}"' for term in wanted)


# -- chunks and snippets -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    start_line: int
    """1-based, inclusive."""
    end_line: int
    """1-based, inclusive."""
    text: str


def chunk_text(text: str) -> Iterator[Chunk]:
    """``text`` cut into chunks (see the module docstring); chunks with no terms are left out."""
    lines = split_lines(text)
    start = 0
    while start < len(lines):
        end, size = start + 1, len(lines[start])
        while (
            end < len(lines)
            and end - start < CHUNK_LINES
            and size + 1 + len(lines[end]) <= CHUNK_CHARS
        ):
            size += 1 + len(lines[end])
            end += 1
        body = "\n".join(lines[start:end])
        if _IDENTIFIER.search(body):
            yield Chunk(start + 1, end, body)
        start = end


def _matching_range(lines: Sequence[str], wanted: frozenset[str]) -> tuple[int, int]:
    """0-based inclusive range of the few neighbouring lines that hold the most query terms.

    Each matching line is grown with nearby lines (at most `MATCH_GAP` apart, `MATCH_SPAN` in
    all) that add terms it lacks (``foo`` on one line, ``bar`` on the next); the range covering
    the most terms wins, then the shortest, then the first. A chunk the query matched always
    has a matching line; (0, 0) is only a fallback.
    """
    found = {i: wanted.intersection(terms(line)) for i, line in enumerate(lines)}
    found = {i: line_terms for i, line_terms in found.items() if line_terms}
    best: tuple[int, int, int, int] | None = None  # (terms, -lines, -first, last)
    for seed in found:
        first = last = seed
        covered = set(found[seed])
        for i in sorted(found, key=lambda i: (abs(i - seed), i)):
            adds_terms = not found[i] <= covered
            near = first - MATCH_GAP <= i <= last + MATCH_GAP
            short = max(last, i) - min(first, i) < MATCH_SPAN
            if adds_terms and near and short:
                first, last = min(first, i), max(last, i)
                covered |= found[i]
        candidate = (len(covered), first - last, -first, last)
        if best is None or candidate > best:
            best = candidate
    return (0, 0) if best is None else (-best[2], best[3])


def _clip(text: str, wanted: frozenset[str]) -> str:
    """``text`` cut to about `SNIPPET_CHARS` characters around its first matching identifier."""
    if len(text) <= SNIPPET_CHARS:
        return text
    focus = next(
        (m.start() for m in _IDENTIFIER.finditer(text) if wanted.intersection(terms(m.group()))),
        0,
    )
    begin = max(0, min(focus - SNIPPET_CHARS // 5, len(text) - SNIPPET_CHARS))
    clipped = text[begin : begin + SNIPPET_CHARS]
    prefix = "…" if begin > 0 else ""
    suffix = "…" if begin + SNIPPET_CHARS < len(text) else ""
    return prefix + clipped + suffix


# -- results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to index; ``path`` is relative to the workspace root, POSIX style."""

    path: str
    content: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    workspace_id: str
    indexed: int
    """Files stored (unchanged ones included)."""
    removed: int
    """Files that were in the index and were removed."""
    chunks: int
    """Chunks written (none for an unchanged file)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "success": True,
            "workspace_id": self.workspace_id,
            "indexed": self.indexed,
            "removed": self.removed,
            "chunks": self.chunks,
        }


@dataclass(frozen=True, slots=True)
class SearchHit:
    workspace_id: str
    path: str
    start_line: int
    end_line: int
    snippet: str
    score: float
    """Positive; higher is a better match."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "path": self.path,
            "startLine": self.start_line,
            "endLine": self.end_line,
            "snippet": self.snippet,
            "score": self.score,
        }


@dataclass(frozen=True, slots=True)
class WorkspaceSummary:
    workspace_id: str
    name: str
    files: int
    chunks: int
    bytes: int
    languages: dict[str, int]
    last_indexed: str
    """ISO 8601, UTC."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "name": self.name,
            "files": self.files,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "languages": dict(self.languages),
            "last_indexed": self.last_indexed,
        }


@dataclass(frozen=True, slots=True)
class _PreparedFile:
    path: str
    language: str | None
    size: int
    sha256: str
    chunks: list[tuple[Chunk, str]]
    """Each chunk with its terms, space-separated."""


def _prepare(file: SourceFile) -> _PreparedFile:
    content = valid_unicode(file.content)
    data = content.encode("utf-8")
    language = file.language or language_for_path(file.path)
    chunks = [(chunk, " ".join(terms(chunk.text))) for chunk in chunk_text(content)]
    return _PreparedFile(
        file.path, language, len(data), hashlib.sha256(data).hexdigest(), chunks
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- the index -----------------------------------------------------------------------------------


class SearchIndex:
    """The index database. Safe to share between threads; each call is one transaction."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_FILENAME
        self._db = Database(self.path, _statements(_SCHEMA), SCHEMA_VERSION)
        self._lock, self._conn, self._transaction = self._db.lock, self._db.conn, \
            self._db.transaction

    def close(self) -> None:
        self._db.close()

    def index(
        self,
        user: str,
        workspace_id: str,
        files: Sequence[SourceFile],
        *,
        removed: Iterable[str] = (),
        name: str | None = None,
        force_rebuild: bool = False,
    ) -> IndexOutcome:
        """Store ``files`` (replacing what a path had) and forget ``removed``, in one transaction.

        ``force_rebuild`` first forgets every file of the workspace. A path given twice, or both
        stored and removed, is a `ValueError`, as is an invalid path or workspace id.
        """
        check_workspace_id(workspace_id)
        removed_paths = [check_path(path) for path in removed]
        stored_paths = [check_path(file.path) for file in files]
        _refuse_repeats(stored_paths, removed_paths)
        prepared = [_prepare(file) for file in files]  # the slow part, outside the lock
        with self._transaction() as db:
            workspace = self._workspace_row(db, user, workspace_id, name)
            if force_rebuild:
                db.execute("DELETE FROM files WHERE workspace = ?", (workspace,))
            removed_count = db.executemany(
                "DELETE FROM files WHERE workspace = ? AND path = ?",
                [(workspace, path) for path in removed_paths],
            ).rowcount if removed_paths else 0
            chunk_count = self._store_files(db, workspace, prepared)
        return IndexOutcome(workspace_id, len(prepared), max(0, removed_count), chunk_count)

    @staticmethod
    def _workspace_row(
        db: sqlite3.Connection, user: str, workspace_id: str, name: str | None
    ) -> int:
        db.execute(
            "INSERT INTO workspaces (user, workspace_id, name, last_indexed) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(user, workspace_id) DO UPDATE SET"
            " name = COALESCE(?, name), last_indexed = excluded.last_indexed",
            (user, workspace_id, name or workspace_id, _now_iso(), name),
        )
        row = db.execute(
            "SELECT id FROM workspaces WHERE user = ? AND workspace_id = ?", (user, workspace_id)
        ).fetchone()
        return int(row[0])

    @staticmethod
    def _store_files(
        db: sqlite3.Connection, workspace: int, prepared: Sequence[_PreparedFile]
    ) -> int:
        """Write the files that are new or changed; return how many chunks were written."""
        known = {
            row[1]: (int(row[0]), row[2], row[3])
            for row in db.execute(
                "SELECT id, path, sha256, language FROM files"
                " WHERE workspace = ? AND path IN (SELECT value FROM json_each(?))",
                (workspace, json.dumps([file.path for file in prepared])),
            )
        }
        next_file_id = _next_id(db, "files")
        changed: list[tuple[int, _PreparedFile]] = []
        added: list[tuple[int, _PreparedFile]] = []
        for file in prepared:
            existing = known.get(file.path)
            if existing is None:
                added.append((next_file_id, file))
                next_file_id += 1
            elif existing[1:] != (file.sha256, file.language):
                changed.append((existing[0], file))
        db.executemany("DELETE FROM chunks WHERE file = ?", [(fid,) for fid, _ in changed])
        db.executemany(
            "UPDATE files SET language = ?, bytes = ?, sha256 = ? WHERE id = ?",
            [(f.language, f.size, f.sha256, fid) for fid, f in changed],
        )
        db.executemany(
            "INSERT INTO files (id, workspace, path, language, bytes, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(fid, workspace, f.path, f.language, f.size, f.sha256) for fid, f in added],
        )
        chunk_rows: list[tuple[int, int, int, int, str]] = []
        term_rows: list[tuple[int, str]] = []
        chunk_id = _next_id(db, "chunks")
        for file_id, file in [*changed, *added]:
            for chunk, chunk_terms in file.chunks:
                chunk_rows.append(
                    (chunk_id, file_id, chunk.start_line, chunk.end_line, chunk.text)
                )
                term_rows.append((chunk_id, chunk_terms))
                chunk_id += 1
        db.executemany(
            "INSERT INTO chunks (id, file, start_line, end_line, text) VALUES (?, ?, ?, ?, ?)",
            chunk_rows,
        )
        db.executemany("INSERT INTO chunk_terms (rowid, terms) VALUES (?, ?)", term_rows)
        return len(chunk_rows)

    def search(
        self, user: str, query: str, *, limit: int = 10, workspace_id: str | None = None
    ) -> list[SearchHit]:
        """The user's best-matching chunks for ``query``, best first, narrowed to their lines."""
        wanted = query_terms(query)
        if not wanted or limit <= 0:
            return []
        if workspace_id is not None:
            check_workspace_id(workspace_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT w.workspace_id, f.path, c.start_line, c.text, bm25(chunk_terms)"
                " FROM chunk_terms"
                " JOIN chunks c ON c.id = chunk_terms.rowid"
                " JOIN files f ON f.id = c.file"
                " JOIN workspaces w ON w.id = f.workspace"
                " WHERE chunk_terms MATCH ? AND w.user = ?"
                " AND (?3 IS NULL OR w.workspace_id = ?3)"
                " ORDER BY bm25(chunk_terms), f.path, c.start_line"
                " LIMIT ?",
                (fts_query(wanted), user, workspace_id, limit),
            ).fetchall()
        wanted_set = frozenset(wanted)
        hits: list[SearchHit] = []
        for workspace, path, chunk_start, text, rank in rows:
            lines = text.split("\n")
            first, last = _matching_range(lines, wanted_set)
            snippet = _clip("\n".join(lines[first : last + 1]), wanted_set)
            hits.append(
                SearchHit(
                    workspace, path, chunk_start + first, chunk_start + last, snippet,
                    float(f"{-rank:.6g}"),
                )
            )
        return hits

    def workspaces(self, user: str, workspace_id: str | None = None) -> list[WorkspaceSummary]:
        """The user's indexed workspaces (or just ``workspace_id``), most recently indexed first."""
        if workspace_id is not None:
            check_workspace_id(workspace_id)
        args = {"user": user, "workspace": workspace_id, "unknown": UNKNOWN_LANGUAGE}
        with self._lock:
            totals = self._conn.execute(
                "SELECT w.id, w.workspace_id, w.name, w.last_indexed,"
                " COUNT(f.id), COALESCE(SUM(f.bytes), 0)"
                " FROM workspaces w LEFT JOIN files f ON f.workspace = w.id"
                " WHERE w.user = :user AND (:workspace IS NULL OR w.workspace_id = :workspace)"
                " GROUP BY w.id ORDER BY w.last_indexed DESC, w.workspace_id",
                args,
            ).fetchall()
            chunks = dict(
                self._conn.execute(
                    "SELECT f.workspace, COUNT(*) FROM chunks c"
                    " JOIN files f ON f.id = c.file JOIN workspaces w ON w.id = f.workspace"
                    " WHERE w.user = :user AND (:workspace IS NULL OR w.workspace_id = :workspace)"
                    " GROUP BY f.workspace",
                    args,
                ).fetchall()
            )
            languages: dict[int, dict[str, int]] = {}
            for workspace, language, count in self._conn.execute(
                "SELECT f.workspace, COALESCE(f.language, :unknown), COUNT(*) FROM files f"
                " JOIN workspaces w ON w.id = f.workspace"
                " WHERE w.user = :user AND (:workspace IS NULL OR w.workspace_id = :workspace)"
                " GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
                args,
            ):
                languages.setdefault(workspace, {})[language] = count
        return [
            WorkspaceSummary(
                workspace_id=ws_id,
                name=name,
                files=files,
                chunks=chunks.get(row_id, 0),
                bytes=size,
                languages=languages.get(row_id, {}),
                last_indexed=last_indexed,
            )
            for row_id, ws_id, name, last_indexed, files, size in totals
        ]


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of ``script`` (a trigger's body holds semicolons of its own)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


def _refuse_repeats(stored: Sequence[str], removed: Sequence[str]) -> None:
    seen: set[str] = set()
    for path in stored:
        if path in seen:
            raise ValueError(f"file {path!r} is given twice")
        seen.add(path)
    both = seen.intersection(removed)
    if both:
        raise ValueError(f"file {min(both)!r} is both indexed and removed in one call")


def _next_id(db: sqlite3.Connection, table: str) -> int:
    """The id after the largest in ``table`` (safe: ids are chosen inside the write lock)."""
    return int(db.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])  # noqa: S608
