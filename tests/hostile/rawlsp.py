"""A raw stdio JSON-RPC client for hostile-input tests: no pygls, no pytest-lsp.

It writes whatever bytes a test hands it, and reads the server's stdout on a background thread,
strictly: every frame the server sends must be well formed (``Content-Length`` in bytes, then a
JSON object), or the reader records a protocol violation. Requests from the server to the client
(``workspace/configuration``, ``window/workDoneProgress/create``, ...) are answered with ``null``
so the server never waits on us. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.conftest import server_env


def frame(body: bytes | str, length: int | str | None = None) -> bytes:
    """One LSP frame; ``length`` overrides the Content-Length value (to lie about it)."""
    data = body.encode() if isinstance(body, str) else body
    value = len(data) if length is None else length
    return f"Content-Length: {value}\r\n\r\n".encode() + data


def encode(message: dict[str, Any]) -> bytes:
    return frame(json.dumps(message))


def key(msg_id: Any) -> str:
    """Responses are matched on the id's canonical JSON (ids may be any JSON value here)."""
    return json.dumps(msg_id, sort_keys=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RawServer:
    """``oropendola-ls`` (or ``--embedded``) on pipes, driven frame by frame."""

    def __init__(self, config_dir: Path, *args: str, env: dict[str, str] | None = None,
                 answers: dict[str, Any] | None = None) -> None:
        self.answers = {"window/showDocument": {"success": True},
                        "workspace/applyEdit": {"applied": False}, **(answers or {})}
        """Results to give the server's own requests, by method (default: null, and one null
        per item for ``workspace/configuration``)."""
        self.stderr_path = config_dir.parent / "server-stderr.log"
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "oropendola_ls", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, env=env or server_env(config_dir),
        )
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self.responses: dict[str, dict[str, Any]] = {}
        self.null_id_errors: list[dict[str, Any]] = []
        """Error responses with id null (to messages that never became requests), in order."""
        self.notifications: dict[str, int] = {}
        self.last_notifications: list[dict[str, Any]] = []
        self.server_requests: list[str] = []
        self.violations: list[str] = []
        self.frames_read = 0
        self._next_id = 0
        self._reader = threading.Thread(target=self._read_loop, name="raw-lsp-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        with self._write_lock:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(encode(message))

    def new_id(self) -> str:
        """Ids of the harness's own requests: strings, so they never meet a test's integers."""
        self._next_id += 1
        return f"raw-{self._next_id}"

    def request(self, method: str, params: Any = None, *, timeout: float = 15.0,
                msg_id: Any = None) -> dict[str, Any]:
        """Send a request and wait (bounded) for its response message."""
        msg_id = self.new_id() if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.wait_response(msg_id, timeout=timeout)

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def wait_response(self, msg_id: Any, *, timeout: float = 15.0) -> dict[str, Any]:
        k = key(msg_id)
        return self.wait_for(lambda: self.responses.pop(k, None), timeout,
                             f"no response to id {k[:80]} in {timeout} s")

    def wait_for(self, take: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = take()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise TimeoutError(f"{what} (server exit code {self.process.poll()})")
                self._cond.wait(min(left, 0.5))

    def initialize(self, settings: dict[str, Any] | None = None, *,
                   root: Path | None = None) -> dict[str, Any]:
        """``initialize`` with modest capabilities (configuration pulled, progress shown),
        then ``initialized``."""
        capabilities = {
            "workspace": {"configuration": True, "workspaceFolders": True,
                          "applyEdit": True, "workspaceEdit": {"documentChanges": True}},
            "window": {"workDoneProgress": True, "showDocument": {"support": True}},
            "textDocument": {"codeAction": {"resolveSupport": {"properties": ["edit"]}}},
        }
        params: dict[str, Any] = {"processId": os.getpid(), "capabilities": capabilities,
                                  "initializationOptions": settings or {}}
        if root is not None:
            params["rootUri"] = root.as_uri()
            params["workspaceFolders"] = [{"uri": root.as_uri(), "name": root.name}]
        answer = self.request("initialize", params, timeout=30)
        assert "result" in answer, answer
        self.notify("initialized", {})
        return answer

    # -- reading ---------------------------------------------------------------------------

    def _read_loop(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length: int | None = None
            while True:
                line = stdout.readline()
                if not line:
                    with self._cond:
                        self._cond.notify_all()
                    return
                if line == b"\r\n":
                    break
                name, _, value = line.decode("ascii", "replace").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                elif name.strip().lower() != "content-type":
                    self._violation(f"unexpected header line {line[:100]!r}")
            if length is None:
                self._violation("frame without Content-Length")
                continue
            body = stdout.read(length)
            try:
                message = json.loads(body)
            except ValueError:
                self._violation(f"body is not JSON (Content-Length {length}): {body[:100]!r}")
                continue
            self._dispatch(message)

    def _violation(self, text: str) -> None:
        with self._cond:
            self.violations.append(text)
            self._cond.notify_all()

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self._violation(f"not a JSON-RPC 2.0 message: {str(message)[:100]}")
            return
        with self._cond:
            self.frames_read += 1
            if "method" in message and "id" in message:  # a request to us
                self.server_requests.append(message["method"])
            elif "method" in message:
                method = message["method"]
                self.notifications[method] = self.notifications.get(method, 0) + 1
                self.last_notifications = [*self.last_notifications[-49:], message]
            elif message.get("id") is None and "error" in message:
                self.null_id_errors.append(message)
            else:
                self.responses[key(message.get("id"))] = message
            self._cond.notify_all()
        if "method" in message and "id" in message:
            # Not from this thread: it must keep reading while a writer may be blocked on a
            # full pipe (which only drains once the server can write its answers).
            result = self.answers.get(message["method"])
            if message["method"] not in self.answers and message["method"] == (
                    "workspace/configuration"):  # one (empty) value per item
                result = [None for _ in message.get("params", {}).get("items", [])]
            answer = {"jsonrpc": "2.0", "id": message["id"], "result": result}
            threading.Thread(target=self.send, args=(answer,), daemon=True).start()

    # -- ending ------------------------------------------------------------------------------

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> int | None:
        """``shutdown`` + ``exit`` if still possible, then make sure the process is gone."""
        try:
            if self.process.poll() is None:
                self.request("shutdown", timeout=10)
                self.notify("exit")
                self.process.wait(10)
        except Exception:  # teardown of a process a test may have broken
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
            for pipe in (self.process.stdin, self.process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._reader.join(5)
            self._stderr.close()
        return self.process.returncode
