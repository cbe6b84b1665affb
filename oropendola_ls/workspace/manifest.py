"""What the backend holds of a workspace: per file, the size, mtime and SHA-256 last sent.

One manifest per workspace folder, in ``paths.cache_dir()/index/<workspace_id>.json``:

```
{"version": 1, "redaction": 1, "generation": 7, "folder": "/abs/path",
 "files":   {"src/app.py": {"size": 812, "mtime_ns": 1700000000000000000, "sha256": "..."}},
 "skipped": {"logo.bin": {"size": 9120, "mtime_ns": ..., "reason": "binary"}}}
```

``skipped`` remembers files found unfit only by reading them (``binary``, ``invalid_utf8``), so
an unchanged one is not read again at every run.

Saving. The snapshot is replaced atomically (a 0600 temporary file, fsync, ``os.replace``). Each
batch the backend acknowledges is also appended at once to ``<workspace_id>.journal`` as one
JSON line, so an interrupted run (cancelled, crashed, killed) loses nothing that was
acknowledged and the next run does not resend it; rewriting the whole snapshot after every
batch would cost more than the batch itself in a large workspace. `save` folds the journal into
a new snapshot with the next generation number and removes it; journal lines of an older
generation are ignored, so a crash between the two steps is harmless. A torn last line (a crash
mid-write) is skipped.

A corrupt or unreadable manifest is logged and replaced by an empty one: the cost is resending
the workspace, never a failure. A manifest written under another redaction version
(`oropendola_ls.secrets.REDACTION_VERSION`) is dropped the same way, so text redacted by
older rules is replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from oropendola_ls import paths
from oropendola_ls.private_file import write_private
from oropendola_ls.secrets import REDACTION_VERSION

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILE_MODE = 0o600
DIR_MODE = 0o700
_SHA256_HEX = frozenset("0123456789abcdef")


def workspace_id(folder: Path | str) -> str:
    """``ws-`` and the first 16 hex digits of the SHA-256 of the folder's absolute path."""
    absolute = os.path.abspath(os.fspath(folder))
    return "ws-" + hashlib.sha256(os.fsencode(absolute)).hexdigest()[:16]


def index_dir() -> Path:
    return paths.cache_dir() / "index"


@attrs.frozen(slots=True)
class FileEntry:
    size: int
    mtime_ns: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}


@attrs.frozen(slots=True)
class SkipEntry:
    size: int
    mtime_ns: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "reason": self.reason}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _file_entry(raw: Any) -> FileEntry | None:
    if not isinstance(raw, Mapping):
        return None
    size, mtime, digest = _int(raw.get("size")), _int(raw.get("mtime_ns")), raw.get("sha256")
    if size is None or mtime is None or not isinstance(digest, str) or len(digest) != 64 \
            or not _SHA256_HEX.issuperset(digest):
        return None
    return FileEntry(size, mtime, digest)


def _skip_entry(raw: Any) -> SkipEntry | None:
    if not isinstance(raw, Mapping):
        return None
    size, mtime, reason = _int(raw.get("size")), _int(raw.get("mtime_ns")), raw.get("reason")
    if size is None or mtime is None or not isinstance(reason, str):
        return None
    return SkipEntry(size, mtime, reason)


class Manifest:
    """The manifest of one workspace folder. Not thread-safe: one owner at a time."""

    def __init__(self, folder: Path, directory: Path | None = None) -> None:
        self.folder = Path(os.path.abspath(folder))
        self.workspace_id = workspace_id(self.folder)
        self.directory = directory if directory is not None else index_dir()
        self.path = self.directory / f"{self.workspace_id}.json"
        self.journal_path = self.directory / f"{self.workspace_id}.journal"
        self.files: dict[str, FileEntry] = {}
        self.skipped: dict[str, SkipEntry] = {}
        self.generation = 0
        self.dirty = False
        """In-memory changes not yet in the snapshot (journaled or not)."""
        self._journal_lines = 0

    def __repr__(self) -> str:
        return f"Manifest({str(self.path)!r}, files={len(self.files)})"

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path, directory: Path | None = None) -> Manifest:
        manifest = cls(folder, directory)
        manifest._load_snapshot()
        manifest._replay_journal()
        return manifest

    def _load_snapshot(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("Cannot read the index manifest %s (%s); starting afresh", self.path,
                        exc.strerror or type(exc).__name__)
            return
        try:
            data: Any = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION \
                or not isinstance(data.get("files"), dict):
            log.warning("The index manifest %s is corrupt; starting afresh (the workspace is "
                        "sent again)", self.path)
            return
        generation = _int(data.get("generation"))
        self.generation = generation if generation is not None else 0
        if data.get("redaction") != REDACTION_VERSION:
            log.info("The index manifest %s predates the current secret filter; the workspace "
                     "is sent again", self.path)
            self.dirty = True
            return
        bad = 0
        for relpath, raw_entry in data["files"].items():
            entry = _file_entry(raw_entry)
            if entry is None or not isinstance(relpath, str):
                bad += 1
                continue
            self.files[relpath] = entry
        skipped = data.get("skipped")
        if isinstance(skipped, dict):
            for relpath, raw_entry in skipped.items():
                skip = _skip_entry(raw_entry)
                if skip is not None:
                    self.skipped[relpath] = skip
        if bad:
            log.warning("Dropped %d malformed entries from the index manifest %s", bad,
                        self.path)
            self.dirty = True

    def _replay_journal(self) -> None:
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("Cannot read the index journal %s (%s)", self.journal_path,
                        exc.strerror or type(exc).__name__)
            return
        replayed = 0
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                record: Any = json.loads(line)
            except (UnicodeDecodeError, ValueError):
                log.warning("Skipping a torn line in the index journal %s", self.journal_path)
                continue
            if not isinstance(record, dict) or record.get("generation") != self.generation:
                continue
            files = record.get("set")
            removed = record.get("removed")
            updates = {}
            if isinstance(files, dict):
                for relpath, raw_entry in files.items():
                    entry = _file_entry(raw_entry)
                    if entry is not None:
                        updates[relpath] = entry
            self._apply(updates, removed if isinstance(removed, list) else (),
                        bool(record.get("reset")))
            replayed += 1
        if replayed:
            self.dirty = True
            self._journal_lines = replayed
            log.info("Resumed %d acknowledged batches from %s", replayed, self.journal_path)

    # -- changing ---------------------------------------------------------------------------

    def _apply(self, updates: Mapping[str, FileEntry], removed: Iterable[Any],
               reset: bool) -> None:
        if reset:
            self.files.clear()
        self.files.update(updates)
        for relpath in removed:
            if isinstance(relpath, str):
                self.files.pop(relpath, None)

    def record_batch(self, updates: Mapping[str, FileEntry], removed: Iterable[str],
                     *, reset: bool = False) -> None:
        """Apply a batch the backend acknowledged, and append it to the journal at once."""
        removed = list(removed)
        self._apply(updates, removed, reset)
        self.dirty = True
        record = {"generation": self.generation, "reset": reset,
                  "set": {p: e.to_json() for p, e in updates.items()}, "removed": removed}
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        try:
            self._ensure_dir()
            fd = os.open(self.journal_path,
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0),
                         FILE_MODE)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._journal_lines += 1
        except OSError as exc:
            log.warning("Cannot write the index journal %s (%s); an interrupted run may "
                        "resend some files", self.journal_path, exc.strerror or exc)

    def update_stat(self, relpath: str, entry: FileEntry) -> None:
        """A file touched but not changed: new size/mtime, same hash (nothing is sent)."""
        self.files[relpath] = entry
        self.dirty = True

    def remember_skip(self, relpath: str, entry: SkipEntry | None) -> None:
        if entry is None:
            if self.skipped.pop(relpath, None) is not None:
                self.dirty = True
        elif self.skipped.get(relpath) != entry:
            self.skipped[relpath] = entry
            self.dirty = True

    def forget_skips(self, keep: set[str]) -> None:
        stale = [p for p in self.skipped if p not in keep]
        for relpath in stale:
            del self.skipped[relpath]
        if stale:
            self.dirty = True

    # -- saving -----------------------------------------------------------------------------

    def save(self) -> None:
        """Write the snapshot atomically (next generation) and drop the journal."""
        if not self.dirty and not self._journal_lines:
            return
        self._ensure_dir()
        generation = self.generation + 1
        payload = json.dumps({
            "version": FORMAT_VERSION,
            "redaction": REDACTION_VERSION,
            "generation": generation,
            "folder": str(self.folder),
            "files": {p: e.to_json() for p, e in sorted(self.files.items())},
            "skipped": {p: e.to_json() for p, e in sorted(self.skipped.items())},
        }, separators=(",", ":")).encode()
        write_private(self.path, payload, FILE_MODE)
        self.generation = generation
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.journal_path)
        self._journal_lines = 0
        self.dirty = False

    def _ensure_dir(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(self.directory, DIR_MODE)
