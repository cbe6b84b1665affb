"""Every custom method and every command, fuzzed with hypothesis-generated params against ONE
server signed in to the reference backend.

Targets are read from the server itself: every ``oropendola/*`` request it registers and every
command in ``executeCommandProvider``. Params are arbitrary JSON (nested objects, lists, strings,
numbers, booleans, null), with object keys drawn mostly from the names the handlers read, so
wrong types reach each field. Each reply must be a result or an error with -32602 (bad params),
-32803 (RequestFailed: the backend or the workspace refused, with ``data.kind``) or -32800 (a
request this test cancelled: the browser sign-in, which waits for a person by design, is
cancelled after 0.3 s) — never -32603 (a crash in a handler), never a hang (every request is
bounded), and the server answers a normal request after each target.

Drawn deterministically (``derandomize``), a bounded number of examples per target.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BackendProcess
from tests.hostile.rawlsp import RawServer
from tests.hostile.test_jsonrpc_flood import registered_methods

EXAMPLES = 10
ALLOWED = {-32602, -32803, -32800}
FIELDS = ["message", "conversationId", "textDocument", "uri", "range", "start", "end", "line",
          "character", "workDoneToken", "limit", "query", "force", "update", "command", "cwd",
          "username", "password", "apiKey", "apiSecret", "method", "action", "version", "id",
          "text", "settings"]
LONG_RUNNING = {"oropendola.signIn", "oropendola/signIn"}
"""May start the browser sign-in, which waits for a person: cancelled after 0.3 s."""

SIGN_IN_STATE = {"oropendola/signOut", "oropendola.signOut", "oropendola/signIn",
                 "oropendola.signIn"}

keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["file:///etc/passwd", "file:///nonexistent/x.py", "untitled:1", "ls",
                     "-1", "", "lone \udcff surrogate", "file:///tmp/\ud800.py", "\x00"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=12,
)
field_dicts = st.fixed_dictionaries({}, optional={name: json_values for name in FIELDS})
"""Objects with any subset of the names handlers read, each holding any JSON value."""
params_strategy = st.one_of(field_dicts, st.lists(field_dicts, min_size=1, max_size=2),
                            st.dictionaries(keys, json_values, max_size=5), json_values)


def _targets() -> list[str]:
    requests, _, commands = registered_methods()
    return [m for m in requests if m.startswith("oropendola/")] + commands


TARGETS = _targets()


@pytest.fixture(scope="module")
def signed_in(backend: BackendProcess, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[tuple[RawServer, dict[str, str]]]:
    base = tmp_path_factory.mktemp("fuzz")
    config_dir = base / "config"
    config_dir.mkdir()
    workspace = base / "workspace"
    workspace.mkdir()
    (workspace / "main.py").write_text("def add(a, b):\n    return a + b\n")
    server = RawServer(config_dir)
    try:
        server.initialize({"serverUrl": backend.url, "apiRequestTimeout": 10}, root=workspace)
        email, password, _ = backend.add_user()
        credentials = {"username": email, "password": password}
        signed = server.request("oropendola/signIn", credentials, timeout=30)
        assert signed.get("result", {}).get("user") == email, signed
        yield server, credentials
    finally:
        server.close()


def ask(server: RawServer, target: str, params: Any) -> dict[str, Any]:
    """One fuzzed call, bounded: a command goes through workspace/executeCommand."""
    if target.startswith("oropendola/"):
        method, body = target, params
    else:
        method = "workspace/executeCommand"
        body = {"command": target, "arguments": params if isinstance(params, list) else [params]}
    msg_id = server.new_id()
    server.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": body})
    if target in LONG_RUNNING:
        try:
            return server.wait_response(msg_id, timeout=0.3)
        except TimeoutError:
            server.notify("$/cancelRequest", {"id": msg_id})
    return server.wait_response(msg_id, timeout=15.0)


@pytest.mark.parametrize("target", TARGETS)
def test_fuzzed_params_never_crash(signed_in: tuple[RawServer, dict[str, str]],
                                   target: str) -> None:
    server, credentials = signed_in
    seen: dict[object, int] = {}

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(params=params_strategy)
    def check(params: Any) -> None:
        answer = ask(server, target, params)
        code = answer.get("error", {}).get("code")
        seen[code] = seen.get(code, 0) + 1
        assert code is None or code in ALLOWED, (target, params, answer)
        if code == -32803:
            assert answer["error"].get("data", {}).get("kind"), answer
        if target in SIGN_IN_STATE and code is None:  # signed out (or in as someone else)
            server.request("oropendola/signIn", credentials, timeout=30)

    check()
    # Still up, still signed in, still quick.
    asked = time.monotonic()
    status = server.request("oropendola/status", {}, timeout=10)
    assert status["result"]["signedIn"] is True, status
    assert time.monotonic() - asked < 5
    assert not server.violations, server.violations[:3]
    assert sum(seen.values()) >= EXAMPLES, seen


def test_every_target_is_fuzzed() -> None:
    """The list comes from the server: a new method or command is fuzzed without a change here."""
    assert len(TARGETS) >= 25, TARGETS
    assert "oropendola/checkCommand" in TARGETS and "oropendola.runShellCommand" in TARGETS
