"""What the bench scripts share: a figure and its summary, the processes they start, a client.

- `Figure`: one row of the results table: a value per run (the median of the runs is the
  figure, min-max its spread), optionally a ratio to a baseline measured in the same runs, and
  a target.
- `start_backend` / `add_user`: the reference backend as a process (``oropendola-ls backend``).
- `LspClient`: just enough of an asyncio LSP client over the server's stdio: requests, answers
  to the server's own requests, a hook for notifications.
- `rss_kib`: VmRSS of a process, from ``/proc/<pid>/status``.

bench/ is on ``sys.path`` whether a script runs on its own (``python bench/gate.py``) or through
the runner (``python -m bench``), so modules import each other by their bare names.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import operator
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq,
}


@dataclass
class Figure:
    """One measured figure: one value per run; its median is the figure, min-max the spread.

    ``ratio`` holds, per run, this figure divided by ``baseline``'s value of the same run (the
    contestants interleaved in that run). ``target`` is ``(op, value)`` checked against the
    median of the values, or of the ratios when ``target_on_ratio``.
    """

    name: str
    unit: str
    values: list[float]
    target: tuple[str, float] | None = None
    ratio: list[float] | None = None
    baseline: str = ""
    target_on_ratio: bool = False
    target_every_run: bool = False
    """Check the target against the worst run rather than the median (counts of lost events)."""
    note: str = ""
    digits: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def ratio_median(self) -> float | None:
        return statistics.median(self.ratio) if self.ratio else None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, limit = self.target
        if self.target_every_run:
            values = self.ratio if self.target_on_ratio else self.values
            return all(OPS[op](v, limit) for v in values or [])
        value = self.ratio_median if self.target_on_ratio else self.median
        if value is None:
            return None
        return OPS[op](value, limit)

    def fmt(self, value: float) -> str:
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{self.digits}f}"

    def spread(self) -> str:
        if len(self.values) < 2:
            return "-"
        return f"{self.fmt(min(self.values))}-{self.fmt(max(self.values))}"

    def ratio_text(self) -> str:
        if not self.ratio:
            return ""
        text = f"{statistics.median(self.ratio):.2f}x {self.baseline}".rstrip()
        if len(self.ratio) > 1:
            text += f" ({min(self.ratio):.2f}-{max(self.ratio):.2f})"
        return text

    def target_text(self) -> str:
        if self.target is None:
            return ""
        op, limit = self.target
        op = {"<=": "≤", ">=": "≥"}.get(op, op)
        every = " in every run" if self.target_every_run else ""
        if self.target_on_ratio:
            return f"ratio {op} {limit:g}x{every}"
        return f"{op} {limit:,g} {self.unit}{every}"

    def met_text(self) -> str:
        return {None: "", True: "met", False: "NOT MET"}[self.met]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def rss_kib(pid: int) -> int:
    """VmRSS of process ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def server_env(root: Path) -> dict[str, str]:
    """The environment of a server whose user directories are all under ``root``."""
    return dict(os.environ, OROPENDOLA_CONFIG_DIR=str(root / "config"),
                OROPENDOLA_DATA_DIR=str(root / "data"), OROPENDOLA_STATE_DIR=str(root / "state"),
                OROPENDOLA_CACHE_DIR=str(root / "cache"))


def start_backend(data: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """``oropendola-ls backend --data DATA [extra]``: the process and its base URL (with '/')."""
    process = subprocess.Popen(
        [sys.executable, "-m", "oropendola_ls", "backend", "--data", str(data), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("Listening on "):
        process.kill()
        process.wait(10)
        raise RuntimeError(f"backend did not start: {line!r}")
    return process, line.split("Listening on ", 1)[1].strip() + "/"


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def add_user(data: Path, email: str, password: str, *,
             api_key: bool = False) -> tuple[str, str] | None:
    """Create a user in the backend's data directory; (key, secret) with ``api_key``."""
    out = subprocess.run(
        [sys.executable, "-m", "oropendola_ls", "backend", "adduser", email, "--data", str(data),
         *(["--api-key"] if api_key else [])],
        input=password + "\n", text=True, capture_output=True, check=True).stdout
    if not api_key:
        return None
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return fields["api_key"].strip(), fields["api_secret"].strip()


class LspClient:
    """Just enough of an LSP client: framing, requests, answers to the server's requests.

    ``on_notification(message, arrival_time_ns)`` sees every notification from the server.
    """

    def __init__(self, process: asyncio.subprocess.Process,
                 on_notification: Callable[[dict[str, Any], int], None] | None = None) -> None:
        self.process = process
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.states: list[str] = []
        self.on_notification = on_notification
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def spawn(cls, env: dict[str, str], *args: str,
                    on_notification: Callable[[dict[str, Any], int], None] | None = None
                    ) -> LspClient:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "oropendola_ls", *args, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, limit=2**24)
        return cls(process, on_notification)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def request(self, method: str, params: Any = None, within: float = 120) -> Any:
        msg_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        try:
            return await asyncio.wait_for(future, within)
        finally:
            self.pending.pop(msg_id, None)

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def initialize(self, options: dict[str, Any], *, root: Path | None = None,
                         folders: Sequence[Path] = (),
                         capabilities: dict[str, Any] | None = None) -> Any:
        params: dict[str, Any] = {
            "processId": os.getpid(), "rootUri": root.as_uri() if root else None,
            "capabilities": capabilities or {"window": {"workDoneProgress": True}},
            "initializationOptions": options}
        listed = list(folders) or ([root] if root is not None else [])
        if listed:
            params["workspaceFolders"] = [{"uri": f.as_uri(), "name": f.name} for f in listed]
        result = await self.request("initialize", params)
        self.notify("initialized", {})
        return result

    async def close(self) -> None:
        """shutdown + exit, then make sure the process is gone."""
        try:
            if self.process.returncode is None:
                await self.request("shutdown", None, within=10)
                self.notify("exit", None)
                await asyncio.wait_for(self.process.wait(), 10)
        except (TimeoutError, RuntimeError, ConnectionError):
            pass
        finally:
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self.reader.cancel()

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
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
                self._handle(json.loads(body), time.time_ns())
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(RuntimeError("the server closed its stdout"))

    def _handle(self, message: dict[str, Any], arrived: int) -> None:
        method = message.get("method")
        if method is None:
            future = self.pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(
                        f"{message['error'].get('code')}: {message['error'].get('message')}"))
                else:
                    future.set_result(message.get("result"))
        elif "id" in message:  # a request from the server: configuration, progress/create, ...
            result: Any = None
            if method == "workspace/configuration":
                result = [None] * len(message.get("params", {}).get("items", [None]))
            self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        else:
            if method == "oropendola/connectionStatus":
                self.states.append(message["params"]["state"])
            if self.on_notification is not None:
                self.on_notification(message, arrived)


async def wait_for(predicate: Callable[[], bool], seconds: float, what: str = "a condition"
                   ) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.01)


COLUMNS = ("figure", "median", "spread (min-max)", "runs", "unit", "ratio (same runs)",
           "target", "met")


def rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    return [(f.name, f.fmt(f.median), f.spread(), str(len(f.values)), f.unit, f.ratio_text(),
             f.target_text(), f.met_text()) for f in figures]


def table(figures: Sequence[Figure], markdown: bool = False) -> str:
    """The figures as one table: aligned text, or Markdown."""
    body = rows(figures)
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in body]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c)
              for i, c in enumerate(COLUMNS)]
    numeric = {1, 2, 3}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(COLUMNS), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in body]
    return "\n".join(out)


def print_figures(figures: Sequence[Figure]) -> None:
    """The figures of one script, for a script run on its own."""
    print(table(figures))
    for figure in figures:
        if figure.note:
            print(f"  {figure.name}: {figure.note}")
