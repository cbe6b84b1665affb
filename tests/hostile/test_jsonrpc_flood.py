"""10,000 generated hostile JSON-RPC messages against one real server over raw stdio.

What the server does with each kind (``oropendola_ls.protocol``), and what is checked here:

- a body that is not JSON (truncated, invalid UTF-8, nested past the recursion limit, bytes) gets
  -32700 with id null; a JSON value that is not a JSON-RPC 2.0 message gets -32600 (its own id if
  it has a usable one, else null); a notification is never answered;
- a frame whose ``Content-Length`` is negative, missing, not a number or above the 64 MiB limit is
  dropped unanswered and the next well-formed frame is read normally (the junk before it is
  skipped, even on the same line); a length that is too small cuts the body (-32700) and the rest
  is skipped as junk;
- a length that is too large but within the limit cannot be told from a slow writer: the server
  waits for that many bytes. Here the lie is followed by other frames and then padding: whatever
  lay inside the lied length (a real request too) is one unparseable body (-32700), and framing is
  back right after it. A lie that the client never completes leaves the server waiting for bytes;
  closing stdin then ends it (``test_stream_ending_inside_a_lie``);
- ids: any integer (2**70, -1) or string (10 kB) is echoed exactly; floats get -32600 with their
  id; null, booleans, objects and lists get -32600 with id null;
- every standard method the server registers, every ``oropendola/*`` method and every
  ``workspace/executeCommand`` command, with params of the wrong type: requests get -32602 (or a
  result where the value fits, or -32803 from a backend refusal), never -32603; notifications are
  not answered; unknown methods: requests get -32601, notifications are ignored.

Order: requests before ``initialize`` (-32002, LSP) first, then ``initialize``/``initialized``
(methods are handled only after it), then the flood, then a normal ``oropendola/checkCommand``
and ``oropendola/debugInfo``, then ``shutdown``, requests after it (-32600 InvalidRequest) and
``exit`` (exit code 0). ``exit``, ``shutdown`` (honoured whatever its params: it takes none) and
``initialize`` with fitting params are the only messages left out of the flood, as they end or
reset the session by design.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from lsprotocol import types

from tests.hostile.rawlsp import RawServer, encode, frame, key, rss_kib

TOTAL = 10_000
SEED = 8
DEAD_BACKEND = "http://127.0.0.1:9/"  # nothing listens: backend calls fail at once
MAX_RSS_GROWTH_KIB = 64 * 1024
FORBIDDEN = -32603  # an internal error is a crash in a handler


@attrs.define
class Expect:
    """What the generated stream must produce."""

    answers: dict[str, set[int] | None] = attrs.Factory(dict)
    """id key -> allowed error codes (an empty set: a result is required; None: a result or
    -32602/-32600/-32803)."""
    null_errors: Counter[int] = attrs.Factory(Counter)
    """error code -> how many answers with id null."""
    silent: set[str] = attrs.Factory(set)
    """id keys that must never be answered (swallowed by a lying length)."""
    kinds: Counter[str] = attrs.Factory(Counter)


def registered_methods() -> tuple[list[str], list[str], list[str]]:
    """(requests, notifications, commands) the server registers, read from the server object."""
    from oropendola_ls.server import build_server

    fm = build_server().protocol.fm
    requests, notifications = [], []
    for method in sorted(set(fm.builtin_features) | set(fm.features)):
        spec = types.METHOD_TO_TYPES.get(method)
        if method.startswith("oropendola/") or (spec is not None and spec[1] is not None):
            requests.append(method)
        else:
            notifications.append(method)
    return requests, notifications, sorted(fm.commands)


WRONG_VALUES: list[Any] = [
    5, -1.5, "text", True, [1, "two"], {"textDocument": 5}, {"textDocument": {"uri": 7}},
    {"command": 3, "arguments": "x"}, {"message": ["not", "a", "string"]}, {"query": None},
    {"limit": "ten", "query": "q"}, {"position": {"line": -1}}, {"items": {"a": 1}},
    {"settings": [1]}, {"changes": "all"}, {"id": {"nested": True}}, {"value": 2**80},
    {"uri": "\x00\udcff"}, {"force": "yes"}, {"update": []},
]
LEAVE_OUT = {"exit", "shutdown"}
"""End the session whatever their params (``shutdown`` takes none, and is honoured even with
some): sent at the very end."""


def wrong_values_for(method: str) -> list[Any]:
    if method == "initialize":  # wrong types only: fitting params would start a new session
        return [v for v in WRONG_VALUES if not isinstance(v, dict)]
    return WRONG_VALUES


class Flood:
    """A seeded generator of hostile frames; records what each one must produce."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.expect = Expect()
        self.next_id = 0
        self.requests, self.notifications, self.commands = registered_methods()

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _request(self, method: str, params: Any, allowed: set[int] | None,
                 msg_id: Any = None) -> dict[str, Any]:
        msg_id = self._id() if msg_id is None else msg_id
        self.expect.answers[key(msg_id)] = allowed
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        return message

    def _check_command(self, msg_id: Any = None) -> dict[str, Any]:
        return self._request("oropendola/checkCommand", {"command": "ls -la"}, set(), msg_id)

    # -- kinds of message ----------------------------------------------------------------------

    def wrong_params(self) -> bytes:
        """Every registered method (and command), params of the wrong type."""
        self.expect.kinds["wrong-params"] += 1
        pick = self.rng.random()
        if pick < 0.25:
            command = self.rng.choice(self.commands)
            arguments = self.rng.choice([[v] for v in WRONG_VALUES] + [5, "x", {"a": 1}])
            return encode(self._request(types.WORKSPACE_EXECUTE_COMMAND,
                                        {"command": command, "arguments": arguments}, None))
        if pick < 0.7:
            # Mostly values of the wrong type altogether (every object above was already sent
            # to every method once; an object with unknown keys is a valid call to many).
            method = self.rng.choice([m for m in self.requests if m not in LEAVE_OUT])
            values = wrong_values_for(method)
            if self.rng.random() < 0.8:
                values = [v for v in values if not isinstance(v, dict)]
            return encode(self._request(method, self.rng.choice(values), None))
        method = self.rng.choice([m for m in self.notifications if m not in LEAVE_OUT])
        return encode({"jsonrpc": "2.0", "method": method,
                       "params": self.rng.choice(WRONG_VALUES)})

    def unknown_method(self) -> bytes:
        self.expect.kinds["unknown-method"] += 1
        name = self.rng.choice(["unknown/method", "oropendola/doesNotExist", "$/nope",
                                "textDocument/teleport", "", "x" * 300])
        if self.rng.random() < 0.5:
            return encode(self._request(name, {}, {-32601}))
        return encode({"jsonrpc": "2.0", "method": name, "params": {}})

    def odd_id(self) -> bytes:
        self.expect.kinds["odd-id"] += 1
        n = self._id()
        echoed = self.rng.choice([2**70 + n, -n, "i" * 10_000 + str(n), f"s{n}", 0 - 2**64 - n])
        if self.rng.random() < 0.6:
            return encode(self._check_command(echoed))
        float_id = n + 0.5
        if self.rng.random() < 0.5:
            message = {"jsonrpc": "2.0", "id": float_id, "method": "oropendola/checkCommand",
                       "params": {"command": "ls"}}
            self.expect.answers[key(float_id)] = {-32600}
            return encode(message)
        bad = self.rng.choice([None, True, False, {"a": n}, [n], {}])
        self.expect.null_errors[-32600] += 1
        return encode({"jsonrpc": "2.0", "id": bad, "method": "oropendola/checkCommand",
                       "params": {"command": "ls"}})

    def not_json(self) -> bytes:
        self.expect.kinds["not-json"] += 1
        whole = json.dumps(self._check_command())
        self.expect.answers.pop(key(self.next_id))  # it is never read as a request
        body = self.rng.choice([
            whole[: self.rng.randrange(1, len(whole) - 1)].encode(),
            b"\xff\xfe\x00 not utf-8",
            b"[" * 5_000,  # past the JSON decoder's recursion limit
            b"{'single': 'quotes'}",
            b"\x01" + bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(200))),
            b"",  # Content-Length: 0 is an empty body: not JSON either
            b"{" * 3 + b"NaN" + b"}",
        ])
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            self.expect.null_errors[-32700] += 1
            return frame(body)
        raise AssertionError(f"generated JSON where garbage was meant: {body[:40]!r}")

    def bad_envelope(self) -> bytes:
        self.expect.kinds["bad-envelope"] += 1
        n = self._id()
        choice = self.rng.randrange(8)
        if choice == 0:
            self.expect.null_errors[-32600] += 1
            return encode(self.rng.choice([42, "str", None, [1, 2], []]))  # type: ignore[arg-type]
        if choice == 1:
            self.expect.null_errors[-32600] += 1
            return encode({"jsonrpc": "2.0"})
        if choice == 2:
            self.expect.answers[key(n)] = {-32600}
            return encode({"jsonrpc": "1.0", "id": n, "method": "oropendola/status"})
        if choice == 3:
            self.expect.answers[key(n)] = {-32600}
            return encode({"id": n, "method": "oropendola/status"})
        if choice == 4:
            self.expect.answers[key(n)] = {-32600}
            return encode({"jsonrpc": "2.0", "id": n, "method": self.rng.choice([5, None, []])})
        if choice == 5:
            return encode({"jsonrpc": "2.0", "method": {"not": "a string"}})  # notification
        if choice == 6:  # a response to a request the server never sent
            return encode({"jsonrpc": "2.0", "id": f"resp-{n}", "result": [1]})
        return encode({"jsonrpc": "2.0", "id": f"err-{n}", "error": "not an object"})

    def bad_framing(self) -> bytes:
        """A frame with a broken header, followed directly by the next generated frame."""
        self.expect.kinds["bad-framing"] += 1
        request = self._check_command()
        body = json.dumps(request).encode()
        choice = self.rng.randrange(7)
        self.expect.answers.pop(key(request["id"]))
        if choice == 0:
            return frame(body, -len(body))
        if choice == 1:
            return b"\r\n" + body  # no header at all
        if choice == 2:
            return frame(body, self.rng.choice(["12abc", "", "0x20", "1e3", "NaN", "\u0661"]))
        if choice == 3:  # above the limit: refused without reading a byte of it
            return frame(body, self.rng.choice([2**31, 10**12, 2**64, int("9" * 200)]))
        if choice == 4:  # too small: the body is cut, the rest is junk
            self.expect.null_errors[-32700] += 1
            return frame(body, self.rng.randrange(1, len(body) // 2))
        if choice == 5:  # junk bytes (no newline) before a good frame on the same line
            self.expect.answers[key(request["id"])] = set()
            return b"garbage \x00\xff" * self.rng.randrange(1, 300) + frame(body)
        # unusual but valid spelling: lower case, extra spaces, a Content-Type header first
        self.expect.answers[key(request["id"])] = set()
        return (b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
                + f"content-length:   {len(body)}  \r\n\r\n".encode() + body)

    def lying_length(self, following: list[bytes]) -> bytes:
        """A length too large by the size of ``following`` frames and some padding: all of it
        is read as one body (-32700) and none of the requests inside is answered."""
        self.expect.kinds["lying-length"] += 1
        inside = self._check_command()
        self.expect.answers.pop(key(inside["id"]))
        self.expect.silent.add(key(inside["id"]))
        swallowed = b"".join(following) + encode(inside)
        body = b'{"jsonrpc": "2.0", "id": "liar", "method": "oropendola/status"}'
        padding = b" " * self.rng.randrange(0, 100)
        self.expect.null_errors[-32700] += 1
        return frame(body, len(body) + len(swallowed) + len(padding)) + swallowed + padding

    def messages(self, total: int) -> Iterator[bytes]:
        # Each registered request method and command at least once with each wrong value.
        for method in self.requests:
            if method in LEAVE_OUT:
                continue
            for value in wrong_values_for(method):
                yield encode(self._request(method, value, None))
        for command in self.commands:
            for value in WRONG_VALUES:
                yield encode(self._request(types.WORKSPACE_EXECUTE_COMMAND,
                                           {"command": command, "arguments": [value]}, None))
        sent = len(self.requests) * len(WRONG_VALUES) + len(self.commands) * len(WRONG_VALUES)
        kinds = [self.wrong_params, self.unknown_method, self.odd_id, self.not_json,
                 self.bad_envelope, self.bad_framing]
        while sent < total:
            if self.rng.random() < 0.01:
                # A lie that swallows the frames after it (and no request in them is expected).
                yield self.lying_length([self.not_json_quiet()])
                sent += 3
                continue
            yield self.rng.choice(kinds)()
            sent += 1

    def not_json_quiet(self) -> bytes:
        """A notification (no answer either way) to be swallowed by a lie."""
        return encode({"jsonrpc": "2.0", "method": "unknown/swallowed", "params": {}})


@pytest.fixture
def server(config_dir: Path) -> Iterator[RawServer]:
    raw = RawServer(config_dir)
    yield raw
    raw.close()


def test_ten_thousand_hostile_messages(server: RawServer, tmp_path: Path) -> None:
    flood = Flood(SEED)
    frames = list(flood.messages(TOTAL))  # generated first: the test's CPU is not the server's
    started = time.monotonic()
    # Before initialize: requests get -32002, notifications are dropped.
    early = server.request("oropendola/checkCommand", {"command": "ls"}, msg_id="early")
    assert early["error"]["code"] == -32002, early
    server.notify("workspace/didChangeConfiguration", {"settings": {}})

    root = tmp_path / "workspace"
    root.mkdir()
    server.initialize({"serverUrl": DEAD_BACKEND, "apiRequestTimeout": 2}, root=root)
    assert server.request("oropendola/status", {})["result"]["signedIn"] is False
    baseline = rss_kib(server.pid)

    batch = bytearray()
    for frame_bytes in frames:  # whole frames only: our answers to the server's
        batch += frame_bytes                   # requests go in between batches
        if len(batch) > 1 << 16:
            server.write(bytes(batch))
            batch.clear()
    server.write(bytes(batch))
    expect = flood.expect
    assert sum(expect.kinds.values()) > 8000, expect.kinds
    assert min(expect.kinds.values()) >= 50, expect.kinds

    # A normal request after all of it answers correctly, and fast.
    asked = time.monotonic()
    check = server.request("oropendola/checkCommand", {"command": "rm -rf /"}, timeout=20)
    assert time.monotonic() - asked < 20
    assert check.get("result", {}).get("decision") == "block", check
    info = server.request("oropendola/debugInfo", {})["result"]
    assert info["pid"] == server.pid

    # Every request in the flood was answered, as expected; nothing else was.
    def all_answered() -> bool | None:
        return all(k in server.responses for k in expect.answers) or None

    try:
        server.wait_for(all_answered, 20, "not every flood request was answered")
    except TimeoutError:
        missing = [k for k in expect.answers if k not in server.responses]
        raise AssertionError(f"{len(missing)} unanswered, e.g. {missing[:5]}") from None
    codes: Counter[object] = Counter()
    for k, allowed in expect.answers.items():
        answer = server.responses.pop(k)
        code = answer.get("error", {}).get("code")
        codes[code] += 1
        assert code != FORBIDDEN, answer
        if allowed is None:
            assert code in (None, -32602, -32600, types.LSPErrorCodes.RequestFailed), answer
        elif allowed:
            assert code in allowed, answer
        else:
            assert "result" in answer and answer["result"]["decision"] == "allow", answer
    assert not (expect.silent & server.responses.keys()), "a request inside a lie was answered"
    assert not server.violations, server.violations[:5]
    assert codes[-32602] > 300 and codes[-32601] > 100 and codes[None] > 500, codes
    null_counts = Counter(m["error"]["code"] for m in server.null_id_errors)
    assert null_counts == expect.null_errors, (null_counts, expect.null_errors)
    assert not server.responses, list(server.responses)[:5]

    # Memory: the flood (10 kB ids, 5,000-deep brackets, refused huge lengths) left no growth.
    grown = rss_kib(server.pid) - baseline
    assert grown < MAX_RSS_GROWTH_KIB, f"RSS grew by {grown} KiB"

    # shutdown: requests after it get -32600, notifications are ignored, exit ends the process.
    assert server.request("shutdown")["result"] is None
    for method, params in [("oropendola/checkCommand", {"command": "ls"}),
                           ("oropendola/debugInfo", {}), ("unknown/method", {}),
                           ("shutdown", None), ("textDocument/codeAction", 5)]:
        after = server.request(method, params)
        assert after["error"]["code"] == -32600, after
        assert "shutting down" in after["error"]["message"]
    server.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///x", "text": ""}})
    server.notify("exit")
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 30


def test_stream_ending_inside_a_lie(config_dir: Path) -> None:
    """A length the client never completes keeps the server reading (a slow writer looks the
    same), with the server's own requests still answered; a malformed answer to one of them
    fails that request instead of leaving the server waiting; end of input ends the server."""
    raw = RawServer(config_dir, answers={"workspace/configuration": 5})  # not a list
    try:
        raw.initialize({"serverUrl": DEAD_BACKEND})
        # on_initialized asked workspace/configuration and got garbage: it must go on, so the
        # account is ready (pygls alone would wait for ever and this would take 60 s).
        asked = time.monotonic()
        status = raw.request("oropendola/status", {}, timeout=10)
        assert status["result"]["signedIn"] is False
        assert time.monotonic() - asked < 10
        raw.write(b"Content-Length: 1000\r\n\r\n" + encode(
            {"jsonrpc": "2.0", "id": "inside", "method": "oropendola/status"}))
        with pytest.raises(TimeoutError):
            raw.wait_response("inside", timeout=1)
        assert raw.process.poll() is None
        assert raw.process.stdin is not None
        raw.process.stdin.close()
        raw.process.wait(10)
    finally:
        raw.close()
