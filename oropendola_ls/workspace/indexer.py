"""Send a workspace folder to the backend's index: only what changed, never a secret, resumable.

`index_folder` scans the folder (`scanner`), compares each candidate with the manifest
(`manifest`: same size and mtime means unchanged, without reading), reads the others
(`reader`: hash, sniff, decode and redact from one read), and sends them in batches bounded by
bytes and by count. `index_paths` does the same for a few paths (a save, file-watcher events),
against the same manifest. Scanning and reading run in worker threads, the next batch being
read while the current one is sent, so the event loop stays free.

The wire body of each batch (the ``send`` callable's one argument)::

    {"workspace_id": "ws-…", "workspace_name": "project",
     "files": [{"path": "src/app.py", "language": "python", "content": "<redacted text>",
                "sha256": "<of the bytes on disk>", "size": 812}],
     "removed": ["old/path.py"], "force_rebuild": false}

``send`` raises on failure. Any exception but `asyncio.CancelledError` is retried, up to
`SEND_ATTEMPTS` attempts with doubling delays; after that the run stops and the report names the
error. Each batch, once ``send`` returns, is recorded in the manifest's journal at once, so a
run that is cancelled, fails or crashes resumes where it stopped: acknowledged files are not
sent again. Paths the manifest holds that are gone, or now skipped or ignored, are sent in
``removed`` and forgotten once acknowledged. ``force=True`` ignores the manifest, sends every
file and sets ``force_rebuild`` on the first batch (the backend drops what it had; the manifest
is reset when that batch is acknowledged). A run that has nothing to send sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from oropendola_ls.secrets import redact_secrets
from oropendola_ls.workspace.languages import language_of
from oropendola_ls.workspace.manifest import FileEntry, Manifest, SkipEntry, workspace_id
from oropendola_ls.workspace.reader import FileContent, read_candidate
from oropendola_ls.workspace.scanner import (
    DEFAULT_MAX_FILE_SIZE,
    Candidate,
    ScanResult,
    scan_folder,
)

log = logging.getLogger(__name__)

BATCH_MAX_BYTES = 4 << 20
BATCH_MAX_FILES = 200
BATCH_MAX_REMOVED = 1000
READ_AHEAD = 1
SEND_ATTEMPTS = 3
RETRY_DELAY = 0.5
CONTENT_SKIPS = frozenset({"binary", "invalid_utf8"})
"""Skip reasons found by reading: remembered in the manifest until the file changes."""

Send = Callable[[dict[str, Any]], Awaitable[Any]]


class SendRefused(Exception):
    """Raised by a ``send`` callable when retrying cannot help (not signed in, say)."""
Progress = Callable[[int, int, str], None]
AfterScan = Callable[[ScanResult], None]


@attrs.define
class IndexReport:
    """What one run did. `to_json` gives the camelCase result of ``oropendola/indexWorkspace``."""

    workspace_id: str = ""
    mode: str = ""
    """How files were listed: ``git`` or ``walk``."""
    files_scanned: int = 0
    files_sent: int = 0
    files_skipped: int = 0
    skipped: Counter[str] = attrs.Factory(Counter)
    skipped_examples: dict[str, list[str]] = attrs.Factory(dict)
    unchanged: int = 0
    removed: int = 0
    bytes_sent: int = 0
    redactions: Counter[str] = attrs.Factory(Counter)
    """Secret-looking tokens replaced in the files sent, by kind (counts only)."""
    duration_ms: float = 0.0
    scan_ms: float = 0.0
    send_ms: float = 0.0
    errors: list[str] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filesScanned": self.files_scanned,
            "filesSent": self.files_sent,
            "filesSkipped": self.files_skipped,
            "skipped": dict(sorted(self.skipped.items())),
            "unchanged": self.unchanged,
            "removed": self.removed,
            "bytesSent": self.bytes_sent,
            "redactions": dict(sorted(self.redactions.items())),
            "durationMs": round(self.duration_ms, 1),
            "scanMs": round(self.scan_ms, 1),
            "sendMs": round(self.send_ms, 1),
        }
        if self.errors:
            body["errors"] = list(self.errors)
        return body

    def summary(self) -> str:
        """One line for a log or a status message."""
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        text = (f"Indexed {self.files_scanned:,} files: {self.files_sent:,} sent, "
                f"{self.unchanged:,} unchanged, {self.removed:,} removed")
        if skipped:
            text += f", skipped {skipped}"
        return text + f" in {self.duration_ms / 1000:.1f} s"


@attrs.define
class _Plan:
    scan: ScanResult
    manifest: Manifest
    to_read: list[Candidate]
    known_hashes: dict[str, str]
    """The manifest's hash of each path in ``to_read`` it holds."""
    removed: list[str]
    unchanged: int


@attrs.define
class _Batch:
    files: list[dict[str, Any]] = attrs.Factory(list)
    updates: dict[str, FileEntry] = attrs.Factory(dict)
    touched: dict[str, FileEntry] = attrs.Factory(dict)
    skips: list[tuple[Candidate, str]] = attrs.Factory(list)
    redactions: Counter[str] = attrs.Factory(Counter)
    nbytes: int = 0
    read: int = 0


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _lock_for(key: str) -> asyncio.Lock:
    """One run at a time per workspace (in this event loop): they share one manifest."""
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    lock = per_loop.get(key)
    if lock is None:
        lock = per_loop[key] = asyncio.Lock()
    return lock


async def index_folder(
    folder: Path | str,
    *,
    send: Send,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    exclude: Sequence[str] = (),
    force: bool = False,
    progress: Progress | None = None,
    manifest_dir: Path | None = None,
    batch_max_bytes: int = BATCH_MAX_BYTES,
    batch_max_files: int = BATCH_MAX_FILES,
    retry_delay: float = RETRY_DELAY,
    use_git: bool = True,
    after_scan: AfterScan | None = None,
) -> IndexReport:
    """Index the whole ``folder`` (see the module docstring).

    ``manifest_dir`` defaults to ``paths.cache_dir()/index``. ``after_scan`` is called with the
    scan result before any file is read (tests use it to change the tree at that moment).
    """
    return await _run(
        Path(folder), None, send=send, max_file_size=max_file_size, exclude=exclude,
        force=force, progress=progress, manifest_dir=manifest_dir,
        batch_max_bytes=batch_max_bytes, batch_max_files=batch_max_files,
        retry_delay=retry_delay, use_git=use_git, after_scan=after_scan,
    )


async def index_paths(
    folder: Path | str,
    changed: Iterable[str | os.PathLike[str]],
    *,
    send: Send,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    exclude: Sequence[str] = (),
    progress: Progress | None = None,
    manifest_dir: Path | None = None,
    batch_max_bytes: int = BATCH_MAX_BYTES,
    batch_max_files: int = BATCH_MAX_FILES,
    retry_delay: float = RETRY_DELAY,
    use_git: bool = True,
) -> IndexReport:
    """Bring the index up to date for a few paths of ``folder``: saved, created, changed or
    deleted files or directories (absolute, or relative to ``folder``). A path that is now
    missing, ignored or skipped is removed from the index if it was there. Paths outside the
    folder are ignored."""
    root = _absolute(folder)
    scope = _scope_of(root, changed)
    if scope == []:
        return IndexReport(workspace_id=workspace_id(root))
    return await _run(
        root, scope, send=send, max_file_size=max_file_size, exclude=exclude,
        force=False, progress=progress, manifest_dir=manifest_dir,
        batch_max_bytes=batch_max_bytes, batch_max_files=batch_max_files,
        retry_delay=retry_delay, use_git=use_git, after_scan=None,
    )


def _absolute(folder: Path | str) -> Path:
    return Path(os.path.abspath(folder))


def _scope_of(root: Path, changed: Iterable[str | os.PathLike[str]]) -> list[str] | None:
    """The relative paths to rescan; None means the whole folder (it was among them)."""
    scope: list[str] = []
    for path in changed:
        relpath = relative_path(root, path)
        if relpath is None:
            log.debug("Not indexing %s: outside %s", path, root)
        elif relpath == "":
            return None
        else:
            scope.append(relpath)
    return scope


def relative_path(root: Path, path: str | os.PathLike[str]) -> str | None:
    """``path`` relative to ``root`` with ``/`` separators; ``""`` for the root itself, None when
    it lies outside."""
    raw = os.fspath(path)
    if not os.path.isabs(raw):
        raw = os.path.join(root, raw)
    absolute = os.path.abspath(raw)
    for base in dict.fromkeys((str(root), os.path.realpath(root))):
        relative = os.path.relpath(absolute, base)
        if relative == os.curdir:
            return ""
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return relative.replace(os.sep, "/")
    return None


# -- one run ------------------------------------------------------------------------------------


async def _run(
    folder: Path,
    only: list[str] | None,
    *,
    send: Send,
    max_file_size: int,
    exclude: Sequence[str],
    force: bool,
    progress: Progress | None,
    manifest_dir: Path | None,
    batch_max_bytes: int,
    batch_max_files: int,
    retry_delay: float,
    use_git: bool,
    after_scan: AfterScan | None,
) -> IndexReport:
    started = time.perf_counter()
    root = _absolute(folder)
    report = IndexReport(workspace_id=workspace_id(root))
    async with _lock_for(report.workspace_id):
        try:
            plan = await asyncio.to_thread(
                _make_plan, root, only, manifest_dir, exclude, max_file_size, force, use_git
            )
        except NotADirectoryError:
            report.errors.append(f"Cannot index {root}: not a directory")
            return report
        except Exception as exc:  # a bug or an I/O failure: say so, keep the server up
            log.exception("Scanning %s failed", root)
            report.errors.append(f"Scanning {root} failed: {_describe(exc)}")
            return report
        scan = plan.scan
        report.mode = scan.mode
        report.scan_ms = scan.seconds * 1000
        report.unchanged = plan.unchanged
        if after_scan is not None:
            after_scan(scan)
        try:
            await _send_all(root, plan, report, send=send, force=force, progress=progress,
                            max_file_size=max_file_size, batch_max_bytes=batch_max_bytes,
                            batch_max_files=batch_max_files, retry_delay=retry_delay)
        finally:
            report.files_scanned = scan.listed
            report.skipped = Counter(scan.skipped)
            report.skipped_examples = scan.examples
            report.files_skipped = sum(scan.skipped.values())
            report.duration_ms = (time.perf_counter() - started) * 1000
        if plan.manifest.dirty:
            try:
                await asyncio.to_thread(plan.manifest.save)
            except OSError as exc:
                log.warning("Cannot save the index manifest %s: %s", plan.manifest.path, exc)
                report.errors.append(
                    f"Cannot save the index manifest {plan.manifest.path} "
                    f"({exc.strerror or _describe(exc)}): the files were indexed, but the next "
                    "run sends them again; free disk space or make "
                    f"{plan.manifest.directory} writable (OROPENDOLA_CACHE_DIR picks another "
                    "directory)")
            report.duration_ms = (time.perf_counter() - started) * 1000
    log.info("%s (%s)", report.summary(), root)
    return report


def _make_plan(root: Path, only: list[str] | None, manifest_dir: Path | None,
               exclude: Sequence[str], max_file_size: int, force: bool,
               use_git: bool) -> _Plan:
    if not root.is_dir():  # never read a vanished folder as "every file was deleted"
        raise NotADirectoryError(root)
    manifest = Manifest.load(root, manifest_dir)
    scan = scan_folder(root, exclude=exclude, max_file_size=max_file_size, only=only,
                       use_git=use_git)
    files = manifest.files
    cached_skips = manifest.skipped
    to_read: list[Candidate] = []
    known: dict[str, str] = {}
    unchanged = 0
    listed: set[str] = set()
    for candidate in scan.candidates:
        relpath = candidate.relpath
        listed.add(relpath)
        if force:
            to_read.append(candidate)
            continue
        entry = files.get(relpath)
        if entry is not None:
            if entry.size == candidate.size and entry.mtime_ns == candidate.mtime_ns:
                unchanged += 1
                continue
            known[relpath] = entry.sha256
        else:
            skip = cached_skips.get(relpath)
            if skip is not None and skip.size == candidate.size \
                    and skip.mtime_ns == candidate.mtime_ns:
                scan.skip(skip.reason, relpath)
                continue
        to_read.append(candidate)
    if only is None:
        removed = [] if force else [p for p in files if p not in listed]
        manifest.forget_skips(listed)
    else:
        prefixes = tuple(p + "/" for p in only)
        scope = set(only)
        removed = [p for p in files
                   if p not in listed and (p in scope or p.startswith(prefixes))]
    return _Plan(scan, manifest, to_read, known, removed, unchanged)


def _plan_batches(to_read: list[Candidate], max_bytes: int,
                  max_files: int) -> list[tuple[int, int]]:
    """Cut ``to_read`` into ``[start, stop)`` ranges of at most ``max_files`` files and
    ``max_bytes`` bytes by the sizes the scan saw (a file over the limit goes alone)."""
    ranges: list[tuple[int, int]] = []
    start = 0
    nbytes = 0
    for index, candidate in enumerate(to_read):
        if index > start and (index - start >= max_files or nbytes + candidate.size > max_bytes):
            ranges.append((start, index))
            start, nbytes = index, 0
        nbytes += candidate.size
    if start < len(to_read):
        ranges.append((start, len(to_read)))
    return ranges


def _read_batch(plan: _Plan, start: int, stop: int, max_file_size: int) -> _Batch:
    batch = _Batch()
    for candidate in plan.to_read[start:stop]:
        batch.read += 1
        try:
            content: FileContent | str = read_candidate(candidate, max_file_size)
        except Exception:  # a bug must cost one file, not the run
            log.exception("Reading %s failed", candidate.relpath)
            content = "unreadable"
        if isinstance(content, str):
            batch.skips.append((candidate, content))
            continue
        entry = FileEntry(content.size, content.mtime_ns, content.sha256)
        if plan.known_hashes.get(candidate.relpath) == content.sha256:
            batch.touched[candidate.relpath] = entry  # touched, not changed
            continue
        batch.files.append({
            "path": candidate.relpath,
            "language": language_of(candidate.relpath),
            "content": content.text,
            "sha256": content.sha256,
            "size": content.size,
        })
        batch.updates[candidate.relpath] = entry
        batch.redactions.update(content.redactions)
        batch.nbytes += content.encoded_size
    return batch


async def _send_all(root: Path, plan: _Plan, report: IndexReport, *, send: Send, force: bool,
                    progress: Progress | None, max_file_size: int, batch_max_bytes: int,
                    batch_max_files: int, retry_delay: float) -> None:
    manifest = plan.manifest
    scan = plan.scan
    total = len(plan.to_read)
    pending_removed = deque(plan.removed)
    done = 0
    first = True
    loop = asyncio.get_running_loop()
    ranges = deque(_plan_batches(plan.to_read, batch_max_bytes, batch_max_files))
    upcoming: deque[asyncio.Future[_Batch]] = deque()

    def read_ahead() -> None:
        # The next batch is read while this one is sent. Reading further ahead, in more
        # threads, is slower: redaction holds the GIL, and the threads would fight over it.
        while ranges and len(upcoming) < READ_AHEAD:
            start, stop = ranges.popleft()
            upcoming.append(
                loop.run_in_executor(None, _read_batch, plan, start, stop, max_file_size)
            )

    _report_progress(progress, 0, total)
    read_ahead()
    try:
        while True:
            batch: _Batch | None = None
            if upcoming:
                batch = await upcoming.popleft()
                read_ahead()
                done += batch.read
                _absorb(batch, manifest, scan, pending_removed)
            elif not pending_removed and not (force and first):
                break
            files = batch.files if batch is not None else []
            removed = [pending_removed.popleft()
                       for _ in range(min(BATCH_MAX_REMOVED, len(pending_removed)))]
            if files or removed or (force and first):
                body = {
                    "workspace_id": manifest.workspace_id,
                    "workspace_name": root.name,
                    "files": files,
                    "removed": removed,
                    "force_rebuild": force and first,
                }
                sent_at = time.perf_counter()
                error = await _send_with_retry(send, body, retry_delay)
                report.send_ms += (time.perf_counter() - sent_at) * 1000
                if error is not None:
                    tried = "" if isinstance(error, SendRefused) else \
                        f" after {SEND_ATTEMPTS} attempts"
                    report.errors.append(
                        f"Sending to the backend failed{tried}: {_describe(error)}; "
                        f"{report.files_sent:,} files were sent, the rest is sent at the next run"
                    )
                    return
                updates = batch.updates if batch is not None else {}
                await asyncio.to_thread(manifest.record_batch, updates, removed,
                                        reset=force and first)
                first = False
                report.files_sent += len(files)
                report.removed += len(removed)
                if batch is not None:
                    report.bytes_sent += batch.nbytes
                    report.redactions.update(batch.redactions)
            if batch is not None:
                _report_progress(progress, done, total)
    finally:
        for future in upcoming:
            future.cancel()


def _absorb(batch: _Batch, manifest: Manifest, scan: ScanResult,
            pending_removed: deque[str]) -> None:
    """Record what reading found besides content: skips and touched-only files."""
    for relpath, entry in batch.touched.items():
        manifest.update_stat(relpath, entry)
    for relpath in batch.updates:
        manifest.remember_skip(relpath, None)  # no longer binary, say
    for candidate, reason in batch.skips:
        scan.skip(reason, candidate.relpath)
        if reason in CONTENT_SKIPS:
            manifest.remember_skip(
                candidate.relpath, SkipEntry(candidate.size, candidate.mtime_ns, reason)
            )
        if candidate.relpath in manifest.files:
            pending_removed.append(candidate.relpath)


async def _send_with_retry(send: Send, body: dict[str, Any],
                           retry_delay: float) -> Exception | None:
    """None once ``send`` succeeds; the last error after `SEND_ATTEMPTS` failures."""
    error: Exception | None = None
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            await send(body)
            return None
        except asyncio.CancelledError:
            raise
        except SendRefused as exc:
            log.warning("Sending an index batch was refused: %s", _describe(exc))
            return exc
        except Exception as exc:
            error = exc
            log.warning("Sending an index batch failed (attempt %d of %d): %s", attempt,
                        SEND_ATTEMPTS, _describe(exc))
            if attempt < SEND_ATTEMPTS:
                await asyncio.sleep(retry_delay * 2 ** (attempt - 1))
    return error


def _report_progress(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    try:
        progress(done, total, f"Indexing {done:,}/{total:,} files")
    except Exception:
        log.exception("The index progress callback failed")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, OSError) and str(exc):
        text = f"{type(exc).__name__}: {text}"
    return redact_secrets(text[:500])[0]
