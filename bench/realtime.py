"""ai_progress → client ``$/progress``: latency and throughput through the real server.

    python bench/realtime.py [--runs 5] [--burst-runs 3] [--rate 1000] [--latency-events 2000]
                             [--burst-events 20000]

Starts the reference backend (``oropendola-ls backend --control``) and ``oropendola-ls`` as
processes, signs in, waits for the realtime connection, then holds one chat open (the backend's
``chat/hold``) so that the events have a request to stream to. The backend emits ``ai_progress``
``text`` events carrying their sequence number and send time (``time.time_ns()``); this script,
a minimal JSON-RPC client reading the server's stdout, takes the arrival time of each
``$/progress`` report that carries them. Figures, each per run (median of the runs, min-max):

- latency p50 and p99 of ``--latency-events`` events at ``--rate`` events/s, and events lost;
- a burst of ``--burst-events`` emitted as fast as the backend can: events/s through the
  server, from the first send to the last arrival, and how many were lost; and the rate the
  backend emitted at (the ceiling of what this can show).

Targets: p50 ≤ 2 ms and p99 ≤ 10 ms at 1,000 events/s; ≥ 5,000 events/s with none lost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import Figure, print_figures

TOKEN = "bench-chat"
MARK = re.compile(r"(\d+):(\d+);")


class Client:
    """Just enough of an LSP client: framing, requests, answers to the server's requests."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.samples: dict[int, tuple[int, int]] = {}  # seq → (sent time_ns, arrival time_ns)
        self.states: list[str] = []
        self.reports = 0
        self.reader = asyncio.get_running_loop().create_task(self._read())

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def request(self, method: str, params: Any) -> Any:
        msg_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await future

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = 0
            while True:
                line = await stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await stdout.readexactly(length)
            arrived = time.time_ns()
            self._handle(json.loads(body), arrived)

    def _handle(self, message: dict[str, Any], arrived: int) -> None:
        method = message.get("method")
        if method is None:
            future = self.pending.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]["message"]))
                else:
                    future.set_result(message.get("result"))
        elif "id" in message:  # a request from the server: configuration, progress/create, ...
            result: Any = [None] if method == "workspace/configuration" else None
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        elif method == "$/progress" and message["params"]["token"] == TOKEN:
            value = message["params"]["value"]
            if value.get("kind") == "report":
                self.reports += 1
                for seq, sent in MARK.findall(value.get("message") or ""):
                    self.samples.setdefault(int(seq), (int(sent), arrived))
        elif method == "oropendola/connectionStatus":
            self.states.append(message["params"]["state"])


def start_backend(data: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "oropendola_ls", "backend", "--control", "--data", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        raise RuntimeError(f"backend did not start: {line!r}")
    return process, line.split("Listening on ", 1)[1].strip() + "/"


async def wait_for(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        await asyncio.sleep(0.01)


async def settle(client: Client, count: int, quiet: float = 5.0, limit: float = 120.0) -> None:
    """Wait until all ``count`` events arrived, or none arrived for ``quiet`` seconds (the rest
    are lost), at most ``limit`` seconds: a server still catching up is not counted as losing."""
    deadline = time.monotonic() + limit
    seen, last_change = len(client.samples), time.monotonic()
    while len(client.samples) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if len(client.samples) != seen:
            seen, last_change = len(client.samples), time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure_once(control: httpx.AsyncClient, client: Client, user: str, count: int,
                  rate: float) -> tuple[list[float], float, int, float]:
    """Emit ``count`` events; return (latencies in ms, events/s from first send to last
    arrival, events lost, events/s the backend emitted)."""
    client.samples.clear()
    data = {"type": "text", "partial": True, "text": "{seq}:{sent_ns};"}
    reply = await control.post("emit", json={"user": user, "event": "ai_progress", "data": data,
                                             "count": count, "rate": rate})
    reply.raise_for_status()
    emitted = count / max(reply.json()["seconds"], 1e-9)
    await settle(client, count)
    samples = list(client.samples.values())
    if not samples:
        return [], 0.0, count, emitted
    latencies = [(arrived - sent) / 1e6 for sent, arrived in samples]
    span = (max(a for _, a in samples) - min(s for s, _ in samples)) / 1e9
    return latencies, len(samples) / span, count - len(samples), emitted


EMAIL, PASSWORD = "bench@example.com", "bench password"


async def run(root: Path, url: str, runs: int, burst_runs: int, rate: float,
              latency_events: int, burst_events: int) -> list[Figure]:
    env = dict(os.environ, OROPENDOLA_CONFIG_DIR=str(root / "config"),
               OROPENDOLA_DATA_DIR=str(root / "data"), OROPENDOLA_STATE_DIR=str(root / "st"))
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oropendola_ls", stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, limit=2**24)
    client = Client(server)
    control = httpx.AsyncClient(base_url=f"{url}_reference/control/", timeout=120)
    p50: list[float] = []
    p99: list[float] = []
    lost_at_rate: list[float] = []
    throughput: list[float] = []
    lost_in_burst: list[float] = []
    emitted_rate: list[float] = []
    try:
        await asyncio.wait_for(client.request("initialize", {
            "processId": os.getpid(), "rootUri": None,
            "capabilities": {"window": {"workDoneProgress": True}},
            "initializationOptions": {"serverUrl": url, "chatTransport": "realtime"}}), 60)
        client.notify("initialized", {})
        await asyncio.wait_for(client.request(
            "oropendola/signIn", {"username": EMAIL, "password": PASSWORD}), 60)
        await wait_for(lambda: "connected" in client.states, 15)
        connected_at = len(client.states)

        (await control.post("chat/hold", json={"hold": True})).raise_for_status()
        chat = asyncio.ensure_future(client.request(
            "oropendola/chat", {"message": "bench", "workDoneToken": TOKEN}))
        await wait_for(lambda: client.reports > 0, 15)  # the held chat's "thinking"

        await measure_once(control, client, EMAIL, 500, rate)  # warm-up
        for _ in range(runs):
            latencies, _, lost, _ = await measure_once(control, client, EMAIL, latency_events,
                                                       rate)
            if not latencies:
                raise RuntimeError("no event reached the client")
            p50.append(statistics.median(latencies))
            p99.append(percentile(latencies, 0.99))
            lost_at_rate.append(lost)
        for _ in range(burst_runs):
            _, events_per_s, lost, emitted = await measure_once(control, client, EMAIL,
                                                                burst_events, 0)
            throughput.append(events_per_s)
            lost_in_burst.append(lost)
            emitted_rate.append(emitted)
        changes = client.states[connected_at:]
        (await control.post("chat/hold", json={"hold": False})).raise_for_status()
        await asyncio.wait_for(chat, 30)
    finally:
        await control.aclose()
        if server.returncode is None:
            server.kill()
        await server.wait()
        client.reader.cancel()
    at = f"at {rate:,.0f} events/s"
    return [
        Figure(f"realtime: event → $/progress p50 {at}", "ms", p50, target=("<=", 2.0),
               note=f"{latency_events:,} events per run"),
        Figure(f"realtime: event → $/progress p99 {at}", "ms", p99, target=("<=", 10.0)),
        Figure(f"realtime: events lost {at}", "events", lost_at_rate, target=("<=", 0),
               digits=0, target_every_run=True),
        Figure("realtime: burst events/s through the server", "events/s", throughput,
               target=(">=", 5000.0), digits=0, baseline="backend emit rate",
               ratio=[t / e for t, e in zip(throughput, emitted_rate, strict=True)],
               note=f"{burst_events:,} events per run, emitted as fast as the backend can; "
                    "first send → last arrival"),
        Figure("realtime: burst events lost", "events", lost_in_burst, target=("<=", 0),
               digits=0, target_every_run=True,
               note="connection changes during the runs: "
                    + (" → ".join(changes) if changes else "none (connected throughout)")),
        Figure("realtime: burst rate the backend emitted", "events/s", emitted_rate, digits=0,
               note="the ceiling of the burst figure: the backend's own emit rate"),
    ]


def measure(runs: int = 5, burst_runs: int = 3, rate: float = 1000.0,
            latency_events: int = 2000, burst_events: int = 20_000) -> list[Figure]:
    """The realtime figures; see the module docstring."""
    with tempfile.TemporaryDirectory(prefix="oropendola-realtime-bench-") as tmp:
        root = Path(tmp)
        backend, url = start_backend(root / "backend")
        try:
            subprocess.run([sys.executable, "-m", "oropendola_ls", "backend", "adduser", EMAIL,
                            "--data", str(root / "backend")], input=PASSWORD + "\n", text=True,
                           capture_output=True, check=True)
            return asyncio.run(run(root, url, runs, burst_runs, rate, latency_events,
                                   burst_events))
        finally:
            backend.terminate()
            backend.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="latency runs")
    parser.add_argument("--burst-runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--latency-events", type=int, default=2000)
    parser.add_argument("--burst-events", type=int, default=20000)
    args = parser.parse_args(argv)
    print_figures(measure(args.runs, args.burst_runs, args.rate, args.latency_events,
                          args.burst_events))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
