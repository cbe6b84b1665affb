"""File analysis as diagnostics: ``oropendola/analyzeFile``, and analysis on save.

The text analysed is the open document's (as the editor has it), else the file on disk. It is
sent to ``files.analyze`` with secret-looking tokens redacted; a file whose path says it holds
secrets, or one over 5 MiB, is refused before anything is sent (features/files.py). The
backend's findings (lines from 1, columns in code points from 0, in the text it was sent) become
LSP diagnostics in the client's position encoding, on the lines of the text the editor has
(redaction may have shortened lines, so positions are mapped back), and are published for the
URI; an empty list clears what an earlier analysis published.

With ``analyzeOnSave`` on, each ``textDocument/didSave`` (through ``save_listeners``) starts a
debounced analysis of that URI: a newer save, a ``didClose`` or an explicit request cancels the
pending one, HTTP request included, so a burst of saves costs one backend call. A failure on
save is logged, and shown to the user once until an analysis on save succeeds again.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.workspace import PositionCodec

from oropendola_ls.backend.errors import BackendError
from oropendola_ls.features.account import backend_errors
from oropendola_ls.features.files import (
    MAX_FILE_BYTES,
    LocalFile,
    local_file,
    read_capped,
    refuse,
    too_large,
)
from oropendola_ls.features.params import parse_params
from oropendola_ls.server import OropendolaServer, ServerNotReadyError

log = logging.getLogger(__name__)

ANALYZE_FILE = "oropendola/analyzeFile"
ON_SAVE = "analyzeOnSave"
SAVE_DELAY = 0.3
"""Seconds after the last save of a file before it is analysed."""
SETTINGS_WAIT = 10.0
"""How long a save made before the settings arrived waits for them."""
SOURCE = "oropendola"
SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "information": types.DiagnosticSeverity.Information,
    "hint": types.DiagnosticSeverity.Hint,
}

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MARKER_RUN = re.compile(r"(?:\[REDACTED:[A-Za-z0-9_]+\])+")


@attrs.define
class AnalyzeParams:
    text_document: dict[str, Any]


@attrs.frozen
class Source:
    text: str
    language: str | None
    version: int | None


# -- positions ------------------------------------------------------------------------------------


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in _LINE_BREAK.finditer(text))]


def _segments(original: str, sent: str) -> list[tuple[int, int, int]] | None:
    """Where the text between redaction markers of ``sent`` lies in ``original``:
    ``(offset in sent, offset in original, length)`` each; None if they do not line up."""
    pieces: list[tuple[int, int]] = []  # (offset in sent, length) of each literal piece
    position = 0
    for run in _MARKER_RUN.finditer(sent):
        pieces.append((position, run.start() - position))
        position = run.end()
    pieces.append((position, len(sent) - position))
    found: list[tuple[int, int, int]] = []
    cursor = 0
    for index, (start, length) in enumerate(pieces):
        piece = sent[start:start + length]
        if index == 0:
            at = 0 if original.startswith(piece) else -1
        elif index == len(pieces) - 1:
            at = len(original) - length if original.endswith(piece) else -1
            at = at if at > cursor else -1
        else:
            at = original.find(piece, cursor + 1)
        if at < 0:
            return None
        found.append((start, at, length))
        cursor = at + length
    return found


class Positions:
    """Turns the backend's (1-based line, code-point column) in the text it was sent into LSP
    positions in the editor's text, in the negotiated encoding, clamped to the text."""

    def __init__(self, original: str, sent: str, codec: PositionCodec) -> None:
        self.lines = _LINE_BREAK.split(original)
        self.codec = codec
        self._segments = _segments(original, sent) if sent is not original else None
        if self._segments is not None:
            self._sent_starts = _line_starts(sent)
            self._original_starts = _line_starts(original)
            self._sent_lines = _LINE_BREAK.split(sent)
            self._segment_starts = [start for start, _, _ in self._segments]
        elif sent is not original:
            log.debug("redacted text does not line up with the original; positions unmapped")

    def position(self, line: int, column: int) -> types.Position:
        line -= 1  # the backend counts lines from 1
        if self._segments is not None:
            line, column = self._unredact(line, column)
        line = min(max(line, 0), len(self.lines) - 1)
        column = min(max(column, 0), len(self.lines[line]))
        return self.codec.position_to_client_units(self.lines, types.Position(line, column))

    def _unredact(self, line: int, column: int) -> tuple[int, int]:
        assert self._segments is not None
        line = min(max(line, 0), len(self._sent_lines) - 1)
        column = min(max(column, 0), len(self._sent_lines[line]))
        offset = self._sent_starts[line] + column
        index = bisect.bisect_right(self._segment_starts, offset) - 1
        start, at, length = self._segments[max(index, 0)]
        mapped = at + min(offset - start, length)  # inside a marker: where the secret began
        original_line = bisect.bisect_right(self._original_starts, mapped) - 1
        return original_line, mapped - self._original_starts[original_line]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def to_diagnostic(finding: object, positions: Positions) -> types.Diagnostic | None:
    """The diagnostic for one finding, or None when the finding is malformed."""
    if not isinstance(finding, Mapping):
        return None
    severity_name = finding.get("severity")
    severity = SEVERITIES.get(severity_name.lower()) if isinstance(severity_name, str) else None
    message = finding.get("message")
    start_line, start_column = _int(finding.get("startLine")), _int(finding.get("startColumn"))
    end_line = _int(finding.get("endLine", start_line))
    end_column = _int(finding.get("endColumn", start_column))
    if (severity is None or not isinstance(message, str) or not message.strip()
            or start_line is None or start_column is None or end_line is None
            or end_column is None):
        return None
    start = positions.position(start_line, start_column)
    end = positions.position(end_line, end_column)
    if (end.line, end.character) < (start.line, start.character):
        end = start
    rule = finding.get("rule")
    return types.Diagnostic(
        range=types.Range(start=start, end=end), message=message, severity=severity,
        source=SOURCE, code=rule if isinstance(rule, str) and rule else None,
    )


def findings_of(reply: Any) -> list[Any]:
    """The findings list of a ``files.analyze`` answer (``{data: {findings}}`` or flatter)."""
    data = reply.get("data", reply) if isinstance(reply, Mapping) else reply
    findings = data.get("findings") if isinstance(data, Mapping) else data
    if not isinstance(findings, list):
        raise BackendError("The backend's analysis answer has no list of findings")
    return findings


def diagnostics_of(findings: Sequence[Any], positions: Positions, shown: str
                   ) -> list[types.Diagnostic]:
    diagnostics: list[types.Diagnostic] = []
    malformed: list[Any] = []
    for finding in findings:
        diagnostic = to_diagnostic(finding, positions)
        if diagnostic is None:
            malformed.append(finding)
        else:
            diagnostics.append(diagnostic)
    if malformed:
        log.warning("ignored %d malformed findings for %s, the first: %.300r", len(malformed),
                    shown, malformed[0])
    return diagnostics


# -- the feature ----------------------------------------------------------------------------------


class AnalysisFeature:
    def __init__(self, server: OropendolaServer) -> None:
        self.server = server
        self.pending: dict[str, asyncio.Task[None]] = {}
        """Analyses waiting or running after a save, by URI."""
        self._failure_shown = False

    async def analyze_request(self, params: Any) -> dict[str, Any]:
        p = parse_params(ANALYZE_FILE, params, AnalyzeParams)
        uri = p.text_document.get("uri")
        if not isinstance(uri, str) or not uri:
            raise JsonRpcInvalidParams(f"{ANALYZE_FILE}: field 'textDocument.uri' must be a string")
        self.cancel(uri)  # this analysis supersedes one pending after a save
        return {"diagnostics": await self.analyze(uri, ANALYZE_FILE)}

    async def analyze(self, uri: str, method: str) -> list[types.Diagnostic]:
        """Analyse ``uri``, publish the diagnostics and return them."""
        from oropendola_ls.secrets import redact_secrets

        file = local_file(self.server, method, uri)
        source = await self._source(file)
        sent, counts = await asyncio.to_thread(redact_secrets, source.text)
        if counts:
            log.info("%s: redacted %d secret-looking tokens before analysis", file.relpath,
                     sum(counts.values()))
        body: dict[str, Any] = {"path": file.relpath, "content": sent,
                                "analysis_type": "diagnostics"}
        if source.language:
            body["language"] = source.language
        account = await self.server.get_account()
        log.info("sending %s to files.analyze (%d characters, version %s)", file.relpath,
                 len(sent), source.version)
        findings = findings_of(await account.call("files.analyze", body))
        positions = Positions(source.text, sent, self.server.workspace.position_codec)
        diagnostics = diagnostics_of(findings, positions, file.relpath)
        self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=source.version))
        log.info("%s: %d diagnostics", file.relpath, len(diagnostics))
        return diagnostics

    async def _source(self, file: LocalFile) -> Source:
        document = self.server.workspace.text_documents.get(unquote(file.uri))
        if document is not None:
            text: str = document.source
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > MAX_FILE_BYTES:
                too_large(file.relpath, size)
            return Source(text, document.language_id or None, document.version)
        data = await asyncio.to_thread(read_capped, file.path, file.relpath)
        if b"\0" in data:
            refuse(f"{file.relpath} is a binary file: only text can be analysed", "not_text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            refuse(f"{file.relpath} is not UTF-8 text: only text can be analysed", "not_text")
        from oropendola_ls.workspace.languages import PLAINTEXT, language_of

        language = language_of(file.relpath)
        return Source(text, None if language == PLAINTEXT else language, None)

    # -- on save -------------------------------------------------------------------------------

    def on_save(self, uri: str) -> None:
        if not self.server.settings_loaded.is_set():
            # Saved before the editor answered workspace/configuration (Neovim sends settings
            # only that way): decide once the settings are known.
            self.server.run_task(self._on_save_after_settings(uri), "save-before-settings")
            return
        if not self.server.settings.analyze_on_save or urlsplit(uri).scheme != "file":
            return
        self.cancel(uri)
        task = self.server.run_task(self._analyze_saved(uri), f"analyze-on-save {uri}")
        self.pending[uri] = task
        task.add_done_callback(lambda done: self._forget(uri, done))

    async def _on_save_after_settings(self, uri: str) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTINGS_WAIT):
                await self.server.settings_loaded.wait()
        if self.server.settings_loaded.is_set():
            self.on_save(uri)

    def cancel(self, uri: str) -> None:
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()

    def _forget(self, uri: str, task: asyncio.Task[None]) -> None:
        if self.pending.get(uri) is task:
            del self.pending[uri]

    async def _analyze_saved(self, uri: str) -> None:
        await asyncio.sleep(SAVE_DELAY)
        try:
            await self.analyze(uri, ON_SAVE)
        except (BackendError, ServerNotReadyError) as exc:
            message = exc.message if isinstance(exc, BackendError) else str(exc)
            log.warning("analysis of %s on save failed: %s", uri, message)
            if not self._failure_shown:
                self._failure_shown = True
                self.server.tell(f"Oropendola could not analyse the saved file: {message}",
                                 types.MessageType.Warning)
            return
        except JsonRpcException as exc:  # refused: a secret, too large or binary file
            log.info("not analysing %s on save: %s", uri, exc.message)
            return
        self._failure_shown = False


def register(server: OropendolaServer) -> None:
    feature = AnalysisFeature(server)
    server.save_listeners.append(feature.on_save)
    server.close_listeners.append(feature.cancel)

    @server.feature(ANALYZE_FILE)
    @backend_errors
    async def analyze_file(ls: OropendolaServer, params: Any) -> dict[str, Any]:
        return await feature.analyze_request(params)
