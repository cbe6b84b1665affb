"""Workspace indexing and search: ``oropendola/indexWorkspace``, ``oropendola/search``,
``oropendola/memory``, the ``oropendola.indexWorkspace`` command and ``workspace/symbol``.

The indexer itself (`oropendola_ls.workspace`) is plain code; this module decides when it runs
(on request, at start with ``indexOnStartup``, and for saved, watched and added files once a
folder has been indexed), shows its progress, and turns search hits into LSP locations so every
editor's symbol picker searches the index.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from oropendola_ls import paths
from oropendola_ls.backend.errors import BackendError, NotSignedInError
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer

from .progress import WorkDone

if TYPE_CHECKING:
    from oropendola_ls.account import Account
    from oropendola_ls.workspace.indexer import IndexReport

log = logging.getLogger(__name__)

INDEX = "oropendola/indexWorkspace"
SEARCH = "oropendola/search"
MEMORY = "oropendola/memory"
CMD_INDEX = "oropendola.indexWorkspace"

CHANGE_DEBOUNCE = 0.5
"""Seconds of quiet after a save or file event before the changed files are sent."""
PROGRESS_INTERVAL = 0.1
MAX_QUERY_CHARS = 1000
SYMBOL_LIMIT = 50


@attrs.define
class IndexParams:
    force: bool = False
    work_done_token: int | str | None = None


@attrs.define
class SearchParams:
    query: str
    limit: int = 10


@attrs.define
class EmptyParams:
    pass


@attrs.frozen
class Hit:
    uri: str
    range: types.Range
    snippet: str
    score: float
    path: str

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "range": {"start": {"line": self.range.start.line,
                                "character": self.range.start.character},
                      "end": {"line": self.range.end.line, "character": self.range.end.character}},
            "snippet": self.snippet,
            "score": self.score,
        }


def uri_to_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path))


class WorkspaceFeature:
    def __init__(self, server: OropendolaServer) -> None:
        self.server = server
        self._lock = asyncio.Lock()
        self._pending: dict[Path, set[Path]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._watching = False
        self._refusal: BackendError | None = None

    # -- folders and their index state ---------------------------------------------------------

    def folders(self) -> list[Path]:
        """The workspace folders on disk (``rootUri`` when the client sends no folders)."""
        workspace = self.server.workspace
        uris = [f.uri for f in workspace.folders.values()] or (
            [workspace.root_uri] if workspace.root_uri else [])
        found = []
        for uri in uris:
            path = uri_to_path(uri)
            if path is not None and path.is_dir():
                found.append(path)
        return found

    def manifest_dir(self, account: Account) -> Path:
        """Manifests per backend and user: another backend has not seen what this one has."""
        credentials = account.credentials
        who = f"{account.config.primary_url}|{credentials.user if credentials else ''}"
        return paths.cache_dir() / "index" / hashlib.sha256(who.encode()).hexdigest()[:16]

    def was_indexed(self, account: Account, folder: Path) -> bool:
        from oropendola_ls.workspace.manifest import workspace_id

        directory = self.manifest_dir(account)
        name = workspace_id(folder)
        return any((directory / f"{name}{suffix}").exists() for suffix in (".json", ".journal"))

    def folder_of(self, path: Path) -> Path | None:
        best: Path | None = None
        for folder in self.folders():
            inside = path == folder or folder in path.parents
            if inside and (best is None or len(folder.parts) > len(best.parts)):
                best = folder
        return best

    # -- indexing ------------------------------------------------------------------------------

    async def index(self, *, force: bool, token: types.ProgressToken | None) -> dict[str, Any]:
        from oropendola_ls.workspace.indexer import index_folder

        account = await self.server.get_account()
        if not account.status()["signedIn"]:
            raise NotSignedInError()
        folders = self.folders()
        if not folders:
            raise JsonRpcInvalidParams(
                f"{INDEX}: no workspace folder on disk to index (open a folder first)")
        progress = WorkDone(self.server, "Oropendola: indexing", token=token, cancellable=True,
                            message=f"Scanning {len(folders)} folder(s)")
        task = asyncio.current_task()
        last_report = 0.0

        def on_progress(done: int, total: int, message: str) -> None:
            nonlocal last_report
            if progress.cancelled and task is not None:
                task.cancel()
                return
            now = asyncio.get_running_loop().time()
            if done == total or now - last_report >= PROGRESS_INTERVAL:
                last_report = now
                progress.report(message, (100 * done) // total if total else None)

        reports: list[IndexReport] = []
        outcome = "Cancelled"
        self._refusal = None
        try:
            async with self._lock:
                for folder in folders:
                    reports.append(await index_folder(
                        folder, send=self._sender(account), force=force,
                        max_file_size=self.server.settings.index_max_file_size,
                        exclude=self.server.settings.index_exclude, progress=on_progress,
                        manifest_dir=self.manifest_dir(account)))
            outcome = "; ".join(r.summary() for r in reports)
        finally:
            progress.end(outcome)
            await progress.ready()
        for report in reports:
            log.info("%s", report.summary())
        errors = [e for r in reports for e in r.errors]
        if errors and not any(r.files_sent or r.removed for r in reports):
            raise self._refusal or BackendError(f"Indexing failed: {errors[0]}")
        if errors:  # indexed, with a problem the user should hear of (a manifest not saved)
            self.server.tell(f"Oropendola: {errors[0]}", types.MessageType.Warning)
        return _combined(reports, folders)

    def _sender(self, account: Account) -> Any:
        from oropendola_ls.backend.errors import BackendUnavailableError, RateLimitedError
        from oropendola_ls.workspace.indexer import SendRefused

        async def send(batch: dict[str, Any]) -> Any:
            try:
                return await account.call("workspace.index", batch)
            except (BackendUnavailableError, RateLimitedError):
                raise  # worth another attempt
            except BackendError as exc:
                self._refusal = exc
                raise SendRefused(exc.message) from exc

        return send

    def start(self, account: Account) -> None:
        """After start-up: index when ``indexOnStartup`` is on, and watch files."""
        self.server.run_task(self._register_watcher(), "watch-files")
        if self.server.settings.index_on_startup and account.status()["signedIn"]:
            self.server.run_task(self._index_quietly(), "index-on-startup")

    async def _index_quietly(self) -> None:
        try:
            await self.index(force=False, token=None)
        except (BackendError, JsonRpcInvalidParams) as exc:
            message = getattr(exc, "message", None) or str(exc)
            log.warning("indexing at start-up failed: %s", message)
            self.server.tell(f"Oropendola could not index the workspace: {message}",
                             types.MessageType.Warning)

    # -- keeping it current --------------------------------------------------------------------

    def file_changed(self, uri: str) -> None:
        """A saved, created, changed or deleted file: send it soon if its folder is indexed."""
        path = uri_to_path(uri)
        folder = self.folder_of(path) if path is not None else None
        if path is None or folder is None:
            return
        self._pending.setdefault(folder, set()).add(path)
        if self._flush is not None:
            self._flush.cancel()
        self._flush = asyncio.get_running_loop().call_later(
            CHANGE_DEBOUNCE, lambda: self.server.run_task(self._send_changes(), "index-changes"))

    async def _send_changes(self) -> None:
        from oropendola_ls.workspace.indexer import index_paths

        pending, self._pending = self._pending, {}
        account = self.server.account
        if account is None or not pending:
            return
        async with self._lock:
            for folder, changed in pending.items():
                if not self.was_indexed(account, folder):
                    continue  # never indexed here: a save does not start sending a workspace
                report = await index_paths(
                    folder, sorted(changed), send=self._sender(account),
                    max_file_size=self.server.settings.index_max_file_size,
                    exclude=self.server.settings.index_exclude,
                    manifest_dir=self.manifest_dir(account))
                log.info("index update for %s: %s", folder, report.summary())

    def folders_changed(self, added: list[str]) -> None:
        """New folders are indexed as at start-up (the others' runs find nothing to send)."""
        account = self.server.account
        if added and account is not None and self.server.settings.index_on_startup \
                and account.status()["signedIn"]:
            self.server.run_task(self._index_quietly(), "index-added-folders")

    async def _register_watcher(self) -> None:
        if self._watching or not self.server.client_support.watched_files_registration:
            return
        self._watching = True
        try:
            await self.server.client_register_capability_async(types.RegistrationParams(
                registrations=[types.Registration(
                    id=str(uuid.uuid4()), method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                    register_options=types.DidChangeWatchedFilesRegistrationOptions(
                        watchers=[types.FileSystemWatcher(glob_pattern="**/*")]),
                )]))
        except Exception as exc:  # a client that refuses gets updates on save only
            log.info("file watching not available: %s", exc)

    # -- search --------------------------------------------------------------------------------

    async def search(self, query: str, limit: int) -> list[Hit]:
        from oropendola_ls.workspace.manifest import workspace_id

        folders = self.folders()
        if not query.strip() or not folders:
            return []
        account = await self.server.get_account()
        hits: list[Hit] = []
        for folder in folders:
            body = {"query": query, "limit": limit, "workspace_id": workspace_id(folder)}
            reply = await account.call("workspace.search", body)
            hits.extend(self._hits(reply, folder))
        hits.sort(key=lambda h: (-h.score, h.path, h.range.start.line))
        return hits[:limit]

    def _hits(self, reply: Any, folder: Path) -> list[Hit]:
        data = reply.get("data") if isinstance(reply, Mapping) else None
        results = data.get("results") if isinstance(data, Mapping) else None
        if not isinstance(results, list):
            raise BackendError("The backend's search answer has no results list")
        hits = []
        for result in results:
            hit = self._hit(result, folder)
            if hit is not None:
                hits.append(hit)
        return hits

    def _hit(self, result: Any, folder: Path) -> Hit | None:
        if not isinstance(result, Mapping):
            return None
        path, start, end = result.get("path"), result.get("startLine"), result.get("endLine")
        if not isinstance(path, str) or not isinstance(start, int) or not isinstance(end, int):
            log.debug("search result without path or lines ignored")
            return None
        target = (folder / path).resolve()
        if folder.resolve() not in target.parents:
            return None  # never point outside the workspace
        start, end = max(start, 1), max(end, start, 1)
        end_character = len(self._line(target, end - 1).encode("utf-16-le")) // 2
        score = result.get("score")
        return Hit(
            uri=target.as_uri(),
            range=types.Range(start=types.Position(line=start - 1, character=0),
                              end=types.Position(line=end - 1, character=end_character)),
            snippet=str(result.get("snippet") or ""),
            score=float(score) if isinstance(score, int | float) else 0.0,
            path=path,
        )

    def _line(self, path: Path, line: int) -> str:
        document = self.server.workspace.text_documents.get(path.as_uri())
        if document is not None:
            lines = document.lines
            return lines[line].rstrip("\r\n") if 0 <= line < len(lines) else ""
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle):
                    if number == line:
                        return text.rstrip("\r\n")
        except OSError:
            pass
        return ""

    async def memory(self) -> Any:
        from oropendola_ls.workspace.manifest import workspace_id

        account = await self.server.get_account()
        reply = await account.call("workspace.get_memory", {})
        ours = {workspace_id(f) for f in self.folders()}
        if isinstance(reply, Mapping) and isinstance(reply.get("workspaces"), list):
            reply = dict(reply)
            reply["workspaces"] = [w for w in reply["workspaces"]
                                   if isinstance(w, Mapping) and w.get("workspace_id") in ours]
        return reply


def _combined(reports: list[IndexReport], folders: list[Path]) -> dict[str, Any]:
    total: dict[str, Any] = {"filesScanned": 0, "filesSent": 0, "filesSkipped": 0,
                             "bytesSent": 0, "removed": 0, "unchanged": 0, "durationMs": 0.0,
                             "skipped": {}}
    for report in reports:
        body = report.to_json()
        for key in ("filesScanned", "filesSent", "filesSkipped", "bytesSent", "removed",
                    "unchanged", "durationMs"):
            total[key] += body[key]
        for reason, count in body["skipped"].items():
            total["skipped"][reason] = total["skipped"].get(reason, 0) + count
        if body.get("errors"):
            total.setdefault("errors", []).extend(body["errors"])
    total["durationMs"] = round(total["durationMs"], 1)
    total["folders"] = [{"uri": f.as_uri(), **r.to_json()} for f, r in zip(folders, reports,
                                                                           strict=False)]
    return total


def register(server: OropendolaServer) -> WorkspaceFeature:
    feature = WorkspaceFeature(server)
    server.ready_hooks.append(feature.start)
    server.save_listeners.append(feature.file_changed)

    @server.feature(INDEX)
    @backend_errors
    async def index_workspace(ls: OropendolaServer, params: Any) -> dict[str, Any]:
        p = parse_params(INDEX, params, IndexParams)
        return await feature.index(force=p.force, token=p.work_done_token)

    @server.command(CMD_INDEX)
    @backend_errors
    async def index_command(ls: OropendolaServer, *args: Any) -> dict[str, Any]:
        ls.protocol.bind_to_request()
        options = args[0] if args and isinstance(args[0], Mapping) else {}
        return await feature.index(force=bool(options.get("force")), token=None)

    @server.feature(SEARCH)
    @backend_errors
    async def search(ls: OropendolaServer, params: Any) -> dict[str, Any]:
        p = parse_params(SEARCH, params, SearchParams)
        if len(p.query) > MAX_QUERY_CHARS or not 1 <= p.limit <= 100:
            raise JsonRpcInvalidParams(
                f"{SEARCH}: 'query' must be at most {MAX_QUERY_CHARS} characters and 'limit' "
                "between 1 and 100")
        return {"results": [hit.to_json() for hit in await feature.search(p.query, p.limit)]}

    @server.feature(MEMORY)
    @backend_errors
    async def memory(ls: OropendolaServer, params: Any) -> Any:
        parse_params(MEMORY, params, EmptyParams)
        return await feature.memory()

    @server.feature(types.WORKSPACE_SYMBOL)
    async def workspace_symbol(
        ls: OropendolaServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation]:
        query = params.query.strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        try:
            hits = await feature.search(query, SYMBOL_LIMIT)
        except BackendError as exc:  # a symbol picker shows no errors: say it once in the log
            log.info("workspace/symbol: %s", exc.message)
            return []
        return [
            types.SymbolInformation(
                name=(hit.snippet.strip().splitlines() or [hit.path])[0][:120],
                kind=types.SymbolKind.String,
                location=types.Location(uri=hit.uri, range=hit.range),
                container_name=f"{hit.path}:{hit.range.start.line + 1}",
            )
            for hit in hits
        ]

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(
        ls: OropendolaServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        for change in params.changes:
            feature.file_changed(change.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def workspace_folders_changed(
        ls: OropendolaServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        feature.folders_changed([f.uri for f in params.event.added])

    server.workspace_feature = feature
    return feature
