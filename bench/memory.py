"""The server's memory: RSS after indexing a 10,000-file workspace, and across 1,000 chats.

    python bench/memory.py [--files 10000] [--chats 1000] [--repo DIR]

One reference backend (``--stream-interval 0``) and one ``oropendola-ls`` process, its workspace
folder the repository bench/index.py generates (``--files`` files; or ``--repo``, an existing
one) and a small second folder of 20 of its Python files, signed in with a password so the
Socket.IO channel is up, ``chatTransport: realtime``: each answer streams as ``ai_progress`` →
``$/progress``, the path with the most per-chat state (progress routes, streams, work-done tokens).

1. VmRSS of the real server process (``/proc/<pid>/status``) once signed in and idle;
2. ``oropendola/indexWorkspace`` (everything sent to the backend, which stores it in SQLite FTS5),
   then VmRSS again;
3. ``--chats`` ``oropendola/chat`` requests one after another, each about a file of the small
   folder (``textDocument``) with a ``workDoneToken``; VmRSS after every 100th, and
   ``oropendola/debugInfo`` (asyncio tasks, open files, waiting chats) after the first 100 and
   after the last.

Growth = RSS at the last chat - RSS at chat 100 (the first 100 warm up caches, connection pools
and the allocator's arenas). Bound for "no growth": see `GROWTH_BOUND_MIB`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    Figure,
    LspClient,
    add_user,
    print_figures,
    rss_kib,
    server_env,
    start_backend,
    wait_for,
)
from common import stop as stop_process

EMAIL, PASSWORD = "memory-bench@example.com", "memory bench password"
GROWTH_BOUND_MIB = 0.5
"""Most RSS growth from chat 100 to chat 1,000 that still counts as none. Runs without a leak
grow by 0.00-0.02 MiB over those 900 chats. The one leak this bench has found (pygls keeping
every ended progress token's future, and through its callback the finished chat task with its
answer: ~1.2 KiB a chat, fixed in features/progress.py) grew it by 1.05 MiB in one run; holding
any per-chat object bigger than ~0.6 KiB trips this bound. RSS cannot see smaller leaks, nor
one that pymalloc's free arenas absorb for a while (the same leak showed 0.01 MiB in another
run): the asyncio task and open-file counts from debugInfo are the second check."""
GROWTH_BOUND_PCT = 1.0


def mib(kib: int) -> float:
    return kib / 1024


def small_project(repo: Path, target: Path, count: int = 20) -> Path:
    """A second workspace folder: ``count`` Python files of ``repo``, the ones the chats ask
    about. (The reference backend's offline engine searches the asking folder's index for every
    chat; over 10,000 files that costs it ~150 ms a chat, which would time the backend's SQLite
    rather than the server, and make 1,000 chats take minutes.)"""
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted((repo / "src" / "py").rglob("*.py"))[:count]:
        (target / source.name).write_bytes(source.read_bytes())
    return target


async def _run(root: Path, repo: Path, url: str, chats: int) -> list[Figure]:
    small = small_project(repo, root / "small")
    client = await LspClient.spawn(server_env(root / "server"))
    try:
        await client.initialize({"serverUrl": url, "chatTransport": "realtime"}, root=repo,
                                folders=[repo, small])
        await client.request("oropendola/signIn", {"username": EMAIL, "password": PASSWORD})
        await wait_for(lambda: "connected" in client.states, 15,
                       "the server's realtime channel to connect")
        await asyncio.sleep(1.0)
        idle = rss_kib(client.pid)

        started = time.perf_counter()
        report = await client.request("oropendola/indexWorkspace", {"workDoneToken": "index"},
                                      within=600)
        index_s = time.perf_counter() - started
        if report["filesSent"] == 0:
            raise RuntimeError(f"indexing sent nothing: {report}")
        await asyncio.sleep(1.0)
        indexed = rss_kib(client.pid)

        files = sorted(small.rglob("*.py"))
        series: list[tuple[int, int]] = []
        info: dict[int, dict[str, Any]] = {0: await client.request("oropendola/debugInfo", {})}
        chats_started = time.perf_counter()
        for n in range(1, chats + 1):
            uri = files[n % len(files)].as_uri()
            answer = await client.request("oropendola/chat", {
                "message": "What does this module do?", "textDocument": {"uri": uri},
                "workDoneToken": f"chat-{n}"})
            if not answer.get("content"):
                raise RuntimeError(f"chat {n}: an empty answer")
            if n % 100 == 0 or n == chats:
                series.append((n, rss_kib(client.pid)))
            if n == min(100, chats) or n == chats:
                info[n] = await client.request("oropendola/debugInfo", {})
        chats_s = time.perf_counter() - chats_started
    finally:
        await client.close()
    first_n, first = series[0]
    last_n, last = series[-1]
    growth = mib(last - first)
    pct = 100 * (last - first) / first
    tasks = {n: d["asyncioTasks"] for n, d in info.items()}
    return [
        Figure("memory: server RSS idle, signed in", "MiB", [mib(idle)], digits=1),
        Figure(f"memory: server RSS after indexing {report['filesScanned']:,} files", "MiB",
               [mib(indexed)], digits=1,
               note=f"indexWorkspace took {index_s:.1f} s, {report['filesSent']:,} files sent"),
        Figure(f"memory: server RSS at chat {first_n}", "MiB", [mib(first)], digits=1),
        Figure(f"memory: server RSS at chat {last_n}", "MiB", [mib(last)], digits=1,
               note=f"{chats} chats in {chats_s:.1f} s; RSS every 100 chats: "
                    + ", ".join(f"{mib(k):.1f}" for _, k in series)),
        Figure(f"memory: RSS growth chat {first_n} → {last_n}", "MiB", [growth],
               target=("<=", GROWTH_BOUND_MIB), note=f"{pct:+.2f} %"),
        Figure(f"memory: RSS growth chat {first_n} → {last_n} (%)", "%", [pct],
               target=("<=", GROWTH_BOUND_PCT)),
        Figure(f"memory: asyncio tasks after chat {first_n} / {last_n}", "tasks",
               [float(tasks[last_n])], target=("<=", float(tasks[first_n])), digits=0,
               note=f"debugInfo before the chats / after chat {first_n} / after chat {last_n}: "
                    f"asyncioTasks {tasks[0]} / {tasks[first_n]} / {tasks[last_n]}, openFiles "
                    f"{info[0]['openFiles']} / {info[first_n]['openFiles']} / "
                    f"{info[last_n]['openFiles']}, waitingChats {info[last_n]['waitingChats']}"),
    ]


def measure(repo: Path | None = None, files: int = 10_000, chats: int = 1000) -> list[Figure]:
    """Generate the repository (unless ``repo``), then measure; see the module docstring."""
    import index

    with tempfile.TemporaryDirectory(prefix="oropendola-memory-bench-") as tmp:
        root = Path(tmp)
        if repo is None:
            repo = root / "repo"
            repo.mkdir()
            index.generate(repo, files, 7)
        data = root / "backend"
        backend, url = start_backend(data, "--stream-interval", "0")
        try:
            add_user(data, EMAIL, PASSWORD)
            return asyncio.run(_run(root, repo, url, chats))
        finally:
            stop_process(backend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--repo", type=Path, help="an existing repository to index")
    args = parser.parse_args(argv)
    print_figures(measure(args.repo, args.files, args.chats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
