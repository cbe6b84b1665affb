"""How long listing the code actions takes: in-process against the handler, and over stdio.

    python bench/code_actions.py [--calls 2000] [--lines 2000]

1. **handler**: `features.code_actions.list_actions` called directly on a server built by
   `build_server()` (every feature registered, so every provider runs), a Python document of
   ``--lines`` lines open, VS Code's capabilities; a selection of 12 lines with one diagnostic.
   This is the listing's own cost: what the 5 ms budget is about.
2. **round trip**: the real `oropendola-ls` process over stdio, initialized with VS Code's
   capabilities (pytest-lsp's preset), the same document opened; ``textDocument/codeAction``
   requests sent one after another, each timed from write to answer. This adds JSON-RPC framing,
   (de)serialisation and the pipes. The server points at a closed loopback port: no backend is
   running, which also shows the listing needs none.

Prints the median and 95th percentile of each, in milliseconds. `measure(runs, ...)` (what
``python -m bench`` calls) repeats both ``runs`` times (a fresh server process per run) and
returns the per-run medians. Target: listing < 5 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Figure
from lsp_wire import frame, read_message  # bench/ is on sys.path when run as a script
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.workspace import Workspace
from pytest_lsp import client_capabilities

from oropendola_ls.features.code_actions import list_actions
from oropendola_ls.server import build_server

PRESET = "visual-studio-code"


def sample(lines: int) -> str:
    chunks = ["import json\nimport os\n\n"]
    while sum(c.count("\n") for c in chunks) < lines:
        n = len(chunks)
        chunks.append(f"\ndef f{n}(item, bucket=[]):\n    bucket.append(item)\n"
                      f"    return json.dumps(bucket)\n")
    return "".join(chunks)


def request_params(uri: str) -> types.CodeActionParams:
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(1, 0), end=types.Position(1, 9)),
        message="'os' imported but never used", code="unused-import", source="oropendola")
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(0, 0), end=types.Position(12, 0)),
        context=types.CodeActionContext(diagnostics=[diagnostic]))


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def bench_handler(text: str, folder: Path, calls: int) -> list[float]:
    server = build_server()
    server.protocol.client_capabilities = client_capabilities(PRESET)
    uri = (folder / "mod.py").as_uri()
    workspace = Workspace(folder.as_uri())
    workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                       text=text))
    server.protocol._workspace = workspace
    params = request_params(uri)
    actions = list_actions(server, params)
    assert len(actions) == 5, [a.title for a in actions]
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        list_actions(server, params)
        times.append((time.perf_counter() - started) * 1000)
    return times


def answer_to(proc: subprocess.Popen[bytes], msg_id: int) -> dict[str, Any]:
    """Read until the answer to ``msg_id``, answering the server's own requests with null."""
    assert proc.stdin is not None and proc.stdout is not None
    while True:
        message = read_message(proc.stdout)
        if message.get("id") == msg_id and "method" not in message:
            return message
        if "method" in message and "id" in message:  # a request from the server
            proc.stdin.write(frame({"jsonrpc": "2.0", "id": message["id"], "result": None}))
            proc.stdin.flush()


def bench_round_trip(text: str, folder: Path, calls: int) -> list[float]:
    converter = default_converter()  # type: ignore[no-untyped-call]
    env = dict(os.environ, OROPENDOLA_CONFIG_DIR=str(folder / ".config"),
               OROPENDOLA_DATA_DIR=str(folder / ".data"),
               OROPENDOLA_STATE_DIR=str(folder / ".state"),
               OROPENDOLA_CACHE_DIR=str(folder / ".cache"))
    proc = subprocess.Popen([sys.executable, "-m", "oropendola_ls"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None
    uri = (folder / "mod.py").as_uri()

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(frame(message))
        proc.stdin.flush()

    try:
        send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "processId": os.getpid(), "rootUri": folder.as_uri(),
            "workspaceFolders": [{"uri": folder.as_uri(), "name": folder.name}],
            "capabilities": converter.unstructure(client_capabilities(PRESET)),
            "initializationOptions": {"serverUrl": "http://127.0.0.1:9/"}}})
        answer_to(proc, 0)
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}}})
        params = converter.unstructure(request_params(uri))
        times = []
        for msg_id in range(1, calls + 1):
            started = time.perf_counter()
            send({"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/codeAction",
                  "params": params})
            answer = answer_to(proc, msg_id)
            times.append((time.perf_counter() - started) * 1000)
            if msg_id == 1:
                titles = [a["title"] for a in answer["result"]]
                assert len(titles) == 5, titles
        send({"jsonrpc": "2.0", "id": calls + 1, "method": "shutdown", "params": None})
        answer_to(proc, calls + 1)
        send({"jsonrpc": "2.0", "method": "exit", "params": None})
        proc.wait(10)
        return times
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


TARGET_MS = 5.0


def measure(runs: int = 5, calls: int = 1000, trip_calls: int = 300,
            lines: int = 2000) -> list[Figure]:
    """Per run: the median of ``calls`` in-process listings and of ``trip_calls`` round trips
    through a fresh server process."""
    text = sample(lines)
    handler: list[float] = []
    trip: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "project"
        folder.mkdir()
        (folder / "mod.py").write_text(text, encoding="utf-8")
        for _ in range(runs):
            handler.append(statistics.median(bench_handler(text, folder, calls)))
            trip.append(statistics.median(bench_round_trip(text, folder, trip_calls)))
    note = f"{text.count(chr(10))}-line Python document, 5 actions"
    return [
        Figure("code actions: listing (handler, in-process)", "ms", handler, digits=3,
               target=("<", TARGET_MS), note=f"{note}; median of {calls} calls per run"),
        Figure("code actions: round trip over stdio", "ms", trip, digits=3,
               target=("<", TARGET_MS),
               note=f"median of {trip_calls} textDocument/codeAction per run, fresh server"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=2000)
    options = parser.parse_args()
    text = sample(options.lines)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "project"
        folder.mkdir()
        (folder / "mod.py").write_text(text, encoding="utf-8")
        handler = percentiles(bench_handler(text, folder, options.calls))
        trip = percentiles(bench_round_trip(text, folder, options.calls))
    lines = text.count("\n")
    print(f"code action listing, {lines}-line document, 5 actions, {options.calls} calls each")
    print(f"  handler (in-process list_actions): median {handler[0]:.3f} ms, "
          f"p95 {handler[1]:.3f} ms")
    print(f"  round trip (oropendola-ls over stdio): median {trip[0]:.3f} ms, "
          f"p95 {trip[1]:.3f} ms")


if __name__ == "__main__":
    main()
