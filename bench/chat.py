"""Chat round trip: ``oropendola/chat`` through the LSP server against a direct HTTP POST.

    python bench/chat.py [--runs 5] [--pairs 40] [--path realtime-free|socket]

Starts the reference backend (``oropendola-ls backend --stream-interval 0``: the offline engine
writes its answer without pauses, so the figures are the two paths' own cost, not a simulated
typing speed) and one ``oropendola-ls`` process, signed in as a fresh user, with
``chatTransport: realtime`` so the server answers each chat with the backend's
``chat.send_message`` (``POST /api/method/oropendola.chat.send_message``, JSON body
``{message, task_id}``).

In each run, ``--pairs`` times and interleaved: one ``oropendola/chat`` request (with a
``workDoneToken``, as editors send; timed from writing the request to reading its answer) and one
direct ``httpx`` POST of the same body to the same method (a kept-alive connection, as the
server's own client has), signed in as the same user. Per run: the median of each, their
difference (the server's added latency) and ratio.

Paths (``--path``):

- ``realtime-free`` (default, the headline): the server signs in with an API key, so it has no
  Socket.IO channel; the chat is the HTTP call plus what the server adds (params, context,
  ``$/progress`` begin/end, JSON-RPC framing on stdio). The direct POST sends the same
  ``Authorization: token key:secret``.
- ``socket``: the server signs in with the password and keeps its Socket.IO connection; the
  backend streams each answer as ``ai_progress`` events that the server turns into ``$/progress``
  reports, and the server waits for the stream's end (at most 0.5 s) after the HTTP answer. The
  direct POST uses a second session of the same user (``sid`` cookie); its events also reach the
  server's socket, which ignores them (no chat of its own waits for them).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from common import (
    Figure,
    LspClient,
    add_user,
    print_figures,
    server_env,
    start_backend,
    stop,
    wait_for,
)

EMAIL, PASSWORD = "chat-bench@example.com", "chat bench password"
MESSAGE = "What does the indexer do with files listed in .gitignore?"
METHOD = "api/method/oropendola.chat.send_message"


async def _direct(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[float, str]:
    body = {"message": MESSAGE, "task_id": f"direct-{uuid.uuid4().hex}"}
    started = time.perf_counter()
    reply = await http.post(url + METHOD, json=body, headers=headers)
    elapsed = time.perf_counter() - started
    reply.raise_for_status()
    content = reply.json()["message"]["content"]
    return elapsed * 1000, content


async def _through_server(client: LspClient, n: int) -> tuple[float, str]:
    started = time.perf_counter()
    answer = await client.request("oropendola/chat",
                                  {"message": MESSAGE, "workDoneToken": f"chat-{n}"})
    return (time.perf_counter() - started) * 1000, answer["content"]


async def _session(root: Path, url: str, path: str, runs: int, pairs: int,
                   key: tuple[str, str] | None) -> list[Figure]:
    client = await LspClient.spawn(server_env(root / "server"))
    http = httpx.AsyncClient(timeout=60, headers={"Accept": "application/json"},
                             cookies=httpx.Cookies())
    try:
        await client.initialize({"serverUrl": url, "chatTransport": "realtime"})
        if path == "realtime-free":
            assert key is not None
            await client.request("oropendola/signIn", {"apiKey": key[0], "apiSecret": key[1]})
            headers = {"Authorization": f"token {key[0]}:{key[1]}"}
        else:
            await client.request("oropendola/signIn", {"username": EMAIL, "password": PASSWORD})
            await wait_for(lambda: "connected" in client.states, 15,
                           "the server's realtime channel to connect")
            login = await http.post(url + "api/method/oropendola.auth.login",
                                    json={"usr": EMAIL, "pwd": PASSWORD})
            login.raise_for_status()
            headers = {"Cookie": f"sid={login.cookies['sid']}"}
        counter = 0
        for _ in range(3):  # warm-up: connections, first-call imports, the backend's caches
            counter += 1
            await _through_server(client, counter)
            await _direct(http, url, headers)
        lsp_runs: list[float] = []
        direct_runs: list[float] = []
        for _ in range(runs):
            lsp: list[float] = []
            direct: list[float] = []
            for i in range(pairs):
                counter += 1
                order = (0, 1) if i % 2 == 0 else (1, 0)  # alternate who goes first
                for who in order:
                    if who == 0:
                        ms, content = await _through_server(client, counter)
                        lsp.append(ms)
                    else:
                        ms, content = await _direct(http, url, headers)
                        direct.append(ms)
                    if not content:
                        raise RuntimeError("an empty chat answer")
            lsp_runs.append(statistics.median(lsp))
            direct_runs.append(statistics.median(direct))
    finally:
        await http.aclose()
        await client.close()
    label = "realtime-free" if path == "realtime-free" else "with Socket.IO progress"
    added = [a - b for a, b in zip(lsp_runs, direct_runs, strict=True)]
    ratio = [a / b for a, b in zip(lsp_runs, direct_runs, strict=True)]
    return [
        Figure(f"chat: direct HTTP POST ({label})", "ms", direct_runs,
               note=f"median of {pairs} calls per run"),
        Figure(f"chat: through oropendola-ls ({label})", "ms", lsp_runs, ratio=ratio,
               baseline="direct", note=f"median of {pairs} calls per run, interleaved"),
        Figure(f"chat: server's added latency ({label})", "ms", added,
               note="LSP median - direct median, per run"),
    ]


def measure(runs: int = 5, pairs: int = 40, paths: tuple[str, ...] = ("realtime-free",)
            ) -> list[Figure]:
    """The figures of each path in ``paths`` (one backend, one server per path)."""
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="oropendola-chat-bench-") as tmp:
        root = Path(tmp)
        data = root / "backend"
        backend, url = start_backend(data, "--stream-interval", "0")
        try:
            key = add_user(data, EMAIL, PASSWORD, api_key=True)
            for path in paths:
                figures += asyncio.run(_session(root / path, url, path, runs, pairs, key))
        finally:
            stop(backend)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=40, help="interleaved pairs per run")
    parser.add_argument("--path", choices=("realtime-free", "socket", "both"),
                        default="realtime-free")
    args = parser.parse_args(argv)
    paths = ("realtime-free", "socket") if args.path == "both" else (args.path,)
    print_figures(measure(args.runs, args.pairs, paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
