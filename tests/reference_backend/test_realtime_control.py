"""Chat answers streamed as ``ai_progress`` and the control endpoint (``/_reference/control``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from aiohttp.test_utils import make_mocked_request

from oropendola_ls.backend.endpoints import PROFILES
from oropendola_ls.reference_backend import RunningBackend, start_backend
from oropendola_ls.reference_backend.control import handle_control
from tests.conftest import run_cli

from .conftest import (
    EMAIL,
    FULL_NAME,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    call,
    login,
    make_client,
)

SEND = PROFILES["oropendola"]["chat.send_message"].method
AGENT = PROFILES["oropendola_ai"]["chat.send_message"].method
SITE = "/127.0.0.1"
TIMEOUT = 5.0


@pytest.fixture
async def backend(data_dir: Path) -> AsyncIterator[RunningBackend]:
    """A backend with the control endpoint and two users."""
    running = await start_backend(data_dir=data_dir, control=True)
    running.store.add_user(EMAIL, PASSWORD, FULL_NAME)
    running.store.add_user(OTHER_EMAIL, OTHER_PASSWORD)
    try:
        yield running
    finally:
        await running.close()


class Listener:
    """A real Socket.IO client that records the events and the disconnect reasons it gets."""

    def __init__(self, *event_names: str) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.disconnects: asyncio.Queue[str] = asyncio.Queue()
        self._event_names = event_names or ("ai_progress",)

    async def connect(self, backend: RunningBackend, sid: str, *,
                      namespaces: list[str] | None = None,
                      transport: str = "websocket") -> Listener:
        for namespace in namespaces or [SITE]:
            for name in self._event_names:
                self.sio.on(name, self._recorder(name), namespace=namespace)
            self.sio.on("disconnect", self.disconnects.put_nowait, namespace=namespace)
        await self.sio.connect(backend.url, headers={"Cookie": f"sid={sid}"},
                               namespaces=namespaces or [SITE], transports=[transport],
                               wait_timeout=TIMEOUT)
        return self

    def _recorder(self, name: str) -> Any:
        return lambda data: self.events.put_nowait((name, data))

    async def next_event(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), TIMEOUT)

    async def progress_until_complete(self) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while not received or received[-1]["type"] != "complete":
            _name, data = await self.next_event()
            received.append(data)
        return received

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def listeners() -> AsyncIterator[list[Listener]]:
    """Listeners a test opens; disconnected at teardown."""
    opened: list[Listener] = []
    yield opened
    for listener in opened:
        await listener.close()


async def listen(backend: RunningBackend, client: httpx.AsyncClient, opened: list[Listener],
                 email: str = EMAIL, password: str = PASSWORD, *events: str,
                 **options: Any) -> Listener:
    listener = Listener(*events)
    opened.append(listener)
    return await listener.connect(backend, await login(client, email, password), **options)


async def control(client: httpx.AsyncClient, action: str, body: Any = None,
                  status: int = 200) -> Any:
    response = await client.post(f"_reference/control/{action}",
                                 json={} if body is None else body, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def eventually(check: Any) -> None:
    """Wait (at most `TIMEOUT` seconds) until ``check()``, a coroutine function, is true."""
    for _ in range(int(TIMEOUT / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{check.__name__} still false after {TIMEOUT} s")


# -- ai_progress during a chat answer --------------------------------------------------------


async def test_chat_streams_progress_to_the_user_before_answering(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    omar = await listen(backend, client, listeners, OTHER_EMAIL, OTHER_PASSWORD)
    sid = await login(client)
    await control(client, "chat/pace", {"interval": 0.02})

    answer_task = asyncio.create_task(call(
        client, SEND, sid=sid,
        json={"prompt": "stream me", "task_id": "task-7", "conversation_id": "conv-7"}))
    _name, thinking = await jane.next_event()
    assert thinking == {"type": "thinking", "message": "Thinking…", "task_id": "task-7"}
    assert not answer_task.done()  # the events come while the request is still open
    events = [thinking, *await jane.progress_until_complete()]
    answer = (await asyncio.wait_for(answer_task, TIMEOUT)).json()["message"]

    assert events[1] == {"type": "working", "step": 1, "total": 1,
                         "message": "Writing the answer", "task_id": "task-7"}
    texts = events[2:-1]
    assert len(texts) >= 3
    assert all(set(e) == {"type", "text", "partial", "task_id", "conversation_id", "timestamp"}
               and e["type"] == "text" and e["partial"] is True and e["task_id"] == "task-7"
               and e["conversation_id"] == "conv-7" for e in texts)
    assert "".join(e["text"] for e in texts) == answer["content"]
    assert all(abs(e["timestamp"] - time.time()) < 30 for e in texts)
    assert [e["timestamp"] for e in texts] == sorted(e["timestamp"] for e in texts)
    assert events[-1] == {"type": "complete", "task_id": "task-7", "conversation_id": "conv-7"}
    assert answer["conversation_id"] == "conv-7" and "stream me" in answer["content"]

    await asyncio.sleep(0.2)
    assert omar.events.empty()  # only the chatting user's room hears it
    assert jane.events.empty()


async def test_published_agent_events_carry_no_task_id(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    key, _secret = backend.store.generate_api_key(EMAIL)
    answer = (await call(client, AGENT, json={"prompt": "hi there", "api_key": key})).json()
    events = await jane.progress_until_complete()
    assert all("task_id" not in event for event in events)
    conversation = answer["message"]["conversation_id"]
    assert events[-1] == {"type": "complete", "conversation_id": conversation}
    assert "".join(e["text"] for e in events if e["type"] == "text") == \
        answer["message"]["content"]


async def test_chat_refuses_a_bad_task_id(client: httpx.AsyncClient) -> None:
    sid = await login(client)
    too_long = await call(client, SEND, sid=sid, json={"prompt": "x", "task_id": "t" * 201})
    assert too_long.json()["message"]["status"] == 400
    not_text = await call(client, SEND, sid=sid, json={"prompt": "x", "task_id": {"a": 1}})
    assert "task_id" in not_text.json()["message"]["error"]


async def test_hold_stops_answers_after_thinking_until_released(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    sid = await login(client)
    assert await control(client, "chat/hold", {"hold": True}) == {"hold": True, "waiting": 0}
    answers = [asyncio.create_task(call(client, SEND, sid=sid, json={"prompt": f"p{n}"}))
               for n in range(2)]
    for _ in answers:
        assert (await jane.next_event())[1]["type"] == "thinking"
    await asyncio.sleep(0.2)
    assert jane.events.empty() and not any(task.done() for task in answers)

    assert await control(client, "chat/hold", {"hold": False}) == {"hold": False, "waiting": 2}
    for task in answers:
        assert (await asyncio.wait_for(task, TIMEOUT)).json()["message"]["status"] == 200
    completes = 0
    while completes < 2:
        completes += (await jane.next_event())[1]["type"] == "complete"


async def test_a_caller_that_leaves_gets_no_more_events(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    sid = await login(client)
    await control(client, "chat/hold", {"hold": True})
    _reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
    body = b'{"prompt": "I will hang up"}'
    writer.write(
        f"POST /api/method/{SEND} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid={sid}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    assert (await jane.next_event())[1]["type"] == "thinking"
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)
    await control(client, "chat/hold", {"hold": False})
    await asyncio.sleep(0.3)
    assert jane.events.empty()


async def test_pace_sets_the_pause_between_deltas(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    sid = await login(client)
    assert await control(client, "chat/pace", {"interval": 0.05}) == {"interval": 0.05}
    await call(client, SEND, sid=sid, json={"prompt": "slowly"})
    texts = [e for e in await jane.progress_until_complete() if e["type"] == "text"]
    assert texts[-1]["timestamp"] - texts[0]["timestamp"] >= (len(texts) - 1) * 0.05 * 0.9

    assert await control(client, "chat/pace", {"interval": 0}) == {"interval": 0.0}
    started = time.monotonic()
    await call(client, SEND, sid=sid, json={"prompt": "quickly"})
    assert time.monotonic() - started < 2.0
    assert (await jane.progress_until_complete())[-1]["type"] == "complete"


# -- dropping, stopping and starting Socket.IO ----------------------------------------------


@pytest.mark.parametrize(
    ("how", "transport", "reason"),
    [
        ("server", "websocket", socketio.AsyncClient.reason.SERVER_DISCONNECT),
        ("server", "polling", socketio.AsyncClient.reason.SERVER_DISCONNECT),
        ("transport", "websocket", socketio.AsyncClient.reason.TRANSPORT_ERROR),
        ("transport", "polling", socketio.AsyncClient.reason.TRANSPORT_ERROR),
    ],
)
async def test_drop_disconnects_every_client(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener],
    how: str, transport: str, reason: str,
) -> None:
    jane = await listen(backend, client, listeners, transport=transport)
    omar = await listen(backend, client, listeners, OTHER_EMAIL, OTHER_PASSWORD,
                        transport=transport)
    assert await control(client, "realtime/drop", {"how": how}) == {"dropped": 2}
    for listener in (jane, omar):
        assert await asyncio.wait_for(listener.disconnects.get(), TIMEOUT) == reason

    async def all_gone() -> bool:
        status = await control(client, "realtime/status")
        return bool(status["clients"] == 0 and status["namespaces"][SITE] == 0)

    await eventually(all_gone)
    # Nothing was stopped. (A websocket: python-engineio's server leaves a long-poll pending
    # when a polling client says goodbye, so that client's disconnect would take 30 s.)
    again = await listen(backend, client, listeners)
    assert again.sio.connected


async def test_drop_defaults_to_a_server_disconnect(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    assert await control(client, "realtime/drop") == {"dropped": 1}
    assert await asyncio.wait_for(jane.disconnects.get(), TIMEOUT) == \
        socketio.AsyncClient.reason.SERVER_DISCONNECT


async def test_stop_refuses_socketio_with_503_until_start(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners)
    assert await control(client, "realtime/stop") == {"running": False, "dropped": 1}
    assert await asyncio.wait_for(jane.disconnects.get(), TIMEOUT) == \
        socketio.AsyncClient.reason.TRANSPORT_ERROR

    refused = await client.get("socket.io/", params={"EIO": "4", "transport": "polling"})
    assert refused.status_code == 503 and "stopped" in refused.json()["error"]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listen(backend, client, listeners)
    assert (await call(client, "ping")).json() == {"message": "pong"}
    sid = await login(client)
    chat = await call(client, SEND, sid=sid, json={"prompt": "anyone?"})
    assert chat.json()["message"]["status"] == 200
    assert (await control(client, "realtime/status"))["running"] is False

    assert await control(client, "realtime/start") == {"running": True}
    back = await listen(backend, client, listeners)
    assert back.sio.connected
    assert (await control(client, "realtime/status"))["running"] is True


async def test_status_counts_connections_per_namespace(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    assert await control(client, "realtime/status") == {
        "running": True, "clients": 0, "namespaces": {"/": 0, SITE: 0, "/localhost": 0},
    }
    await listen(backend, client, listeners, namespaces=["/", SITE])
    await listen(backend, client, listeners, OTHER_EMAIL, OTHER_PASSWORD, namespaces=["/"])
    assert await control(client, "realtime/status") == {
        "running": True, "clients": 2, "namespaces": {"/": 2, SITE: 1, "/localhost": 0},
    }
    assert await backend.realtime_status() == await control(client, "realtime/status")
    await listeners[0].close()

    async def one_left() -> bool:
        status = await control(client, "realtime/status")
        return bool(status["clients"] == 1 and status["namespaces"] == {
            "/": 1, SITE: 0, "/localhost": 0})

    await eventually(one_left)


# -- emit -----------------------------------------------------------------------------------


async def test_emit_repeats_with_placeholders_filled(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners, EMAIL, PASSWORD, "bench")
    omar = await listen(backend, client, listeners, OTHER_EMAIL, OTHER_PASSWORD, "bench")
    data = {"seq": "{seq}", "sent": "{sent_ns}", "list": ["n{seq}", 7], "keep": 1.5, "no": None}
    before = time.time_ns()
    answer = await control(client, "emit", {"user": EMAIL.upper(), "event": "bench",
                                            "data": data, "count": 4})
    assert answer["sent"] == 4 and answer["seconds"] >= 0
    received = [await jane.next_event() for _ in range(4)]
    assert [name for name, _ in received] == ["bench"] * 4
    payloads = [payload for _, payload in received]
    assert [p["seq"] for p in payloads] == ["0", "1", "2", "3"]
    assert [p["list"] for p in payloads] == [["n0", 7], ["n1", 7], ["n2", 7], ["n3", 7]]
    assert all(p["keep"] == 1.5 and p["no"] is None for p in payloads)
    sent = [int(p["sent"]) for p in payloads]
    assert before <= sent[0] <= sent[-1] <= time.time_ns()
    await asyncio.sleep(0.1)
    assert omar.events.empty()


async def test_emit_keeps_to_the_rate(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners, EMAIL, PASSWORD, "tick")
    answer = await control(client, "emit", {"user": EMAIL, "event": "tick",
                                            "data": {"at": "{sent_ns}"}, "count": 11, "rate": 20})
    assert answer["sent"] == 11
    assert 0.45 <= answer["seconds"] < 2.0  # 10 gaps of 50 ms, generously bounded above
    stamps = [int((await jane.next_event())[1]["at"]) for _ in range(11)]
    assert (stamps[-1] - stamps[0]) / 1e9 >= 0.45


async def test_in_process_operations_match_the_endpoint(
    backend: RunningBackend, client: httpx.AsyncClient, listeners: list[Listener]
) -> None:
    jane = await listen(backend, client, listeners, EMAIL, PASSWORD, "note")
    assert await backend.emit(EMAIL, "note", "hello {seq}", count=2) == {
        "sent": 2, "seconds": pytest.approx(0, abs=1)}
    assert [await jane.next_event() for _ in range(2)] == [("note", "hello 0"), ("note", "hello 1")]
    assert await backend.pace_chat(0.5) == {"interval": 0.5}
    assert await backend.hold_chat(False) == {"hold": False, "waiting": 0}
    with pytest.raises(ValueError, match="interval"):
        await backend.pace_chat(11)
    assert await backend.drop_realtime("transport") == {"dropped": 1}
    assert await backend.stop_realtime() == {"running": False, "dropped": 0}
    assert await backend.start_realtime() == {"running": True}


# -- refusals -------------------------------------------------------------------------------


async def test_control_is_404_unless_enabled(tmp_path: Path) -> None:
    plain = await start_backend(data_dir=tmp_path)
    try:
        async with make_client(plain) as http:
            response = await http.post("_reference/control/realtime/status", json={})
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("application/json")
    finally:
        await plain.close()


@pytest.mark.parametrize(
    ("action", "body", "message"),
    [
        ("realtime/explode", {}, "unknown control action 'realtime/explode'"),
        ("realtime/drop", {"how": "gently"}, 'how must be "server" or "transport"'),
        ("realtime/drop", {"why": "server"}, "unknown field(s) why"),
        ("realtime/status", [1, 2], "must be a JSON object"),
        ("emit", {"user": EMAIL, "event": "x"}, "missing field(s) data"),
        ("emit", {"user": EMAIL, "event": "x", "data": 1, "count": 0}, "count must be"),
        ("emit", {"user": EMAIL, "event": "x", "data": 1, "count": 1_000_001}, "count must be"),
        ("emit", {"user": EMAIL, "event": "x", "data": 1, "count": 1.5}, "count must be"),
        ("emit", {"user": EMAIL, "event": "x", "data": 1, "rate": -1}, "rate must be"),
        ("emit", {"user": "", "event": "x", "data": 1}, "user must be"),
        ("emit", {"user": EMAIL, "event": "", "data": 1}, "event must be"),
        ("chat/pace", {"interval": 10.5}, "from 0 to 10"),
        ("chat/pace", {"interval": "fast"}, "from 0 to 10"),
        ("chat/hold", {"hold": "yes"}, "hold must be true or false"),
        ("chat/hold", {}, "missing field(s) hold"),
    ],
)
async def test_bad_requests_are_400(
    client: httpx.AsyncClient, action: str, body: Any, message: str
) -> None:
    answer = await control(client, action, body, status=400)
    assert message in answer["error"]


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("_reference/control/chat/hold", content=b"{hold",
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]


def test_cli_refuses_a_stream_interval_out_of_range() -> None:
    done = run_cli("backend", "--stream-interval", "11", "--control")
    assert done.returncode == 2 and "from 0 to 10" in done.stderr


@pytest.mark.parametrize("peer", ["192.0.2.7", "::ffff:10.0.0.1", "2001:db8::1"])
async def test_control_refuses_other_hosts(peer: str) -> None:
    request = make_mocked_request("POST", "/_reference/control/realtime/status",
                                  match_info={"action": "realtime/status"}).clone(remote=peer)
    response = await handle_control(request)
    assert response.status == 403
