"""The OpenAI-compatible model provider, against a stand-in server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from oropendola_ls.backend.endpoints import PROFILES
from oropendola_ls.reference_backend import RunningBackend, Store, start_backend
from oropendola_ls.reference_backend.chat_engines import LLMConfig, ProviderConfigError
from tests.conftest import run_cli
from tests.stand_in_model import CHUNKS, StandIn, serve_stand_in

from .conftest import EMAIL, FULL_NAME, PASSWORD, call, login

SEND = PROFILES["oropendola"]["chat.send_message"].method
STREAM = PROFILES["oropendola"]["chat.stream"].method
SITE = "/127.0.0.1"
TIMEOUT = 5.0
API_KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    async with serve_stand_in() as model:
        yield model


@pytest.fixture
async def backend(data_dir: Path, stand_in: StandIn) -> AsyncIterator[RunningBackend]:
    llm = LLMConfig(stand_in.url + "/", "stand-in-7b", API_KEY, timeout=5)
    running = await start_backend(data_dir=data_dir, stream_interval=0, llm=llm)
    running.store.add_user(EMAIL, PASSWORD, FULL_NAME)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def progress(backend: RunningBackend,
                   client: httpx.AsyncClient) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """The ``ai_progress`` events Jane's Socket.IO client receives."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("ai_progress", events.put_nowait, namespace=SITE)
    sid = await login(client)
    await sio.connect(backend.url, headers={"Cookie": f"sid={sid}"}, namespaces=[SITE],
                      transports=["websocket"], wait_timeout=TIMEOUT)
    try:
        yield events
    finally:
        await sio.disconnect()


async def until_complete(events: asyncio.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while not received or received[-1]["type"] not in ("complete", "error"):
        received.append(await asyncio.wait_for(events.get(), TIMEOUT))
    return received


async def test_model_deltas_arrive_as_ai_progress_and_the_answer_is_their_text(
    client: httpx.AsyncClient, stand_in: StandIn, progress: asyncio.Queue[dict[str, Any]],
) -> None:
    sid = await login(client)
    context = {"workspace": "demo", "action": "explain",
               "activeFile": {"relativePath": "a.py", "language": "python",
                              "selectedText": "x = 1", "cursorPosition": {"line": 4,
                                                                          "character": 0}}}
    reply = await call(client, SEND, sid=sid, json={
        "message": "What does this do?", "task_id": "t-1", "conversation_id": "c-1",
        "context": context})
    answer = reply.json()["message"]
    assert answer == {"status": 200, "content": "".join(CHUNKS), "model": "stand-in-7b",
                      "conversation_id": "c-1", "agent_mode": True}
    events = await until_complete(progress)
    assert [e["type"] for e in events] == ["thinking", "working", *["text"] * len(CHUNKS),
                                           "complete"]
    assert [e["text"] for e in events if e["type"] == "text"] == CHUNKS
    assert all(e["task_id"] == "t-1" for e in events)

    [sent] = stand_in.requests
    assert sent["model"] == "stand-in-7b" and sent["stream"] is True
    system, user = sent["messages"]
    assert system["role"] == "system" and user == {"role": "user",
                                                   "content": "What does this do?"}
    assert "Workspace: demo" in system["content"]
    assert "Active file: a.py (python), cursor at line 5, column 1" in system["content"]
    assert "Selected code:\n```python\nx = 1\n```" in system["content"]
    assert "Requested action: explain." in system["content"]
    assert stand_in.headers[0]["Authorization"] == f"Bearer {API_KEY}"

    # the next turn carries the conversation so far
    await call(client, SEND, sid=sid, json={"message": "And then?", "conversation_id": "c-1"})
    assert stand_in.requests[1]["messages"][1:] == [
        {"role": "user", "content": "What does this do?"},
        {"role": "assistant", "content": "".join(CHUNKS)},
        {"role": "user", "content": "And then?"},
    ]


async def test_deltas_are_passed_on_while_the_model_is_still_writing(
    backend: RunningBackend, client: httpx.AsyncClient, stand_in: StandIn,
    progress: asyncio.Queue[dict[str, Any]],
) -> None:
    stand_in.mode = "endless"
    sid = await login(client)
    request = asyncio.create_task(call(client, SEND, sid=sid, json={"message": "go on"}))
    texts: list[str] = []
    while len(texts) < 3:
        event = await asyncio.wait_for(progress.get(), TIMEOUT)
        if event["type"] == "text":
            texts.append(event["text"])
    assert texts == CHUNKS[:3] and not request.done()
    request.cancel()  # the client gives up: httpx drops the connection
    await asyncio.wait_for(stand_in.closed.wait(), TIMEOUT)
    assert backend.store.latest_conversation(EMAIL) is None


async def test_a_caller_that_leaves_closes_the_upstream_stream(
    backend: RunningBackend, client: httpx.AsyncClient, stand_in: StandIn,
) -> None:
    stand_in.mode = "endless"
    sid = await login(client)
    _reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
    body = b'{"prompt": "talk forever", "conversation_id": "gone"}'
    writer.write(
        f"POST /api/method/{SEND} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid={sid}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    for _ in range(int(TIMEOUT / 0.02)):
        if stand_in.sent >= 3:
            break
        await asyncio.sleep(0.02)
    assert stand_in.sent >= 3
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(stand_in.closed.wait(), TIMEOUT)  # the stand-in saw it go
    sent = stand_in.sent
    await asyncio.sleep(0.3)
    assert stand_in.sent == sent
    assert backend.store.get_chat_history(EMAIL, "gone") == []


async def test_upstream_failure_is_a_clear_in_band_502_without_the_key(
    client: httpx.AsyncClient, stand_in: StandIn, progress: asyncio.Queue[dict[str, Any]],
    backend: RunningBackend, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sid = await login(client)
    stand_in.mode = "fail"
    reply = await call(client, SEND, sid=sid, json={"message": "hi", "conversation_id": "f"})
    assert reply.status_code == 200
    assert reply.json() == {"message": {"status": 502, "error": (
        f"The model provider failed: HTTP 500 from {stand_in.url}/chat/completions: "
        "boom: the GPU caught fire")}}
    events = await until_complete(progress)
    assert events[-1] == {"type": "error", "conversation_id": "f",
                          "message": reply.json()["message"]["error"]}
    assert backend.store.get_chat_history(EMAIL, "f") == []

    stand_in.mode = "echo-key"
    echoed = (await call(client, SEND, sid=sid, json={"message": "hi"})).json()["message"]
    assert echoed["status"] == 502 and "bad key Bearer ***" in echoed["error"]

    stand_in.mode = "stream-error"
    broken = (await call(client, SEND, sid=sid, json={"message": "hi"})).json()["message"]
    assert broken == {"status": 502, "error": (
        f"The model provider failed: {stand_in.url}/chat/completions reported an error: "
        "model overloaded")}
    events = await until_complete(progress)
    events = await until_complete(progress)
    assert [e["type"] for e in events] == ["thinking", "working", "text", "error"]

    assert stand_in.headers[0]["Authorization"] == f"Bearer {API_KEY}"
    assert "The model provider failed" in caplog.text
    assert API_KEY not in caplog.text
    assert all(API_KEY not in str(record.args) for record in caplog.records)


async def test_an_unreachable_model_and_a_non_streaming_one(
    data_dir: Path, client: httpx.AsyncClient, stand_in: StandIn,
) -> None:
    sid = await login(client)
    stand_in.mode = "json"
    whole = (await call(client, SEND, sid=sid, json={"message": "hi"})).json()["message"]
    assert whole["content"] == "One piece." and whole["status"] == 200

    unreachable = LLMConfig("http://127.0.0.1:9/v1", "m", API_KEY, timeout=2)
    async with await start_backend(data_dir=data_dir.parent / "other", llm=unreachable) as down:
        down.store.add_user(EMAIL, PASSWORD)
        async with httpx.AsyncClient(base_url=down.url, timeout=TIMEOUT) as other:
            other_sid = await login(other)
            answer = (await call(other, SEND, sid=other_sid,
                                 json={"message": "hi"})).json()["message"]
    assert answer["status"] == 502
    assert answer["error"].startswith(
        "The model provider failed: cannot reach http://127.0.0.1:9/v1/chat/completions: "
        "ConnectError")


async def test_chat_stream_passes_the_model_deltas_on(
    client: httpx.AsyncClient, stand_in: StandIn,
) -> None:
    sid = await login(client)
    reply = await call(client, STREAM, sid=sid, verb="GET",
                       params={"message": "stream it", "conversation_id": "s"})
    blocks = [b for b in reply.text.split("\n\n") if b]
    events = [json.loads(b[6:]) for b in blocks[:-1]]
    assert blocks[-1] == "data: [DONE]"
    assert [e["content"] for e in events[:-1]] == CHUNKS
    assert events[-1]["text"] == "".join(CHUNKS) and events[-1]["model"] == "stand-in-7b"

    stand_in.mode = "fail"
    failed = await call(client, STREAM, sid=sid, verb="GET", params={"message": "again"})
    [error, done] = [b for b in failed.text.split("\n\n") if b]
    assert done == "data: [DONE]"
    error_event = json.loads(error[6:])
    assert error_event["say"] == "error" and error_event["status"] == 502
    assert error_event["text"].startswith("The model provider failed: HTTP 500")


# -- configuration ---------------------------------------------------------------------------------


def test_options_win_over_the_environment_and_the_key_comes_from_the_environment() -> None:
    env = {"OROPENDOLA_LLM_BASE_URL": "http://localhost:11434/v1/",
           "OROPENDOLA_LLM_MODEL": "llama3.2", "OROPENDOLA_LLM_API_KEY": API_KEY,
           "MY_KEY": "sk-other-key"}
    from_env = LLMConfig.from_options(base_url=None, model=None, api_key_env=None,
                                      timeout=None, environ=env)
    assert from_env == LLMConfig("http://localhost:11434/v1", "llama3.2", API_KEY, 120.0)
    assert API_KEY not in repr(from_env)
    assert from_env.completions_url == "http://localhost:11434/v1/chat/completions"
    chosen = LLMConfig.from_options(base_url="https://models.example.com/v1", model="qwen",
                                    api_key_env="MY_KEY", timeout=30, environ=env)
    assert (chosen.base_url, chosen.model, chosen.api_key, chosen.timeout) == (
        "https://models.example.com/v1", "qwen", "sk-other-key", 30.0)
    assert LLMConfig.from_options(base_url=None, model=None, api_key_env=None, timeout=None,
                                  environ={}) is None


@pytest.mark.parametrize(("options", "message"), [
    ({"base_url": "http://models.example.com/v1", "model": "m"},
     "plain http:// is only allowed for loopback hosts"),
    ({"base_url": "https://user:pw@models.example.com", "model": "m"},
     "--llm-base-url must not carry credentials"),
    ({"base_url": "ftp://x", "model": "m"}, "--llm-base-url 'ftp://x' is not a URL"),
    ({"base_url": "http://127.0.0.1:1/v1"}, "--llm-base-url needs --llm-model"),
    ({"model": "m"}, "--llm-model (or $OROPENDOLA_LLM_MODEL) needs --llm-base-url"),
    ({"timeout": 5}, "--llm-timeout needs --llm-base-url"),
    ({"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key_env": "UNSET_VAR"},
     "--llm-api-key-env names $UNSET_VAR, which is not set"),
    ({"base_url": "http://127.0.0.1:1/v1", "model": "m", "timeout": 0},
     "--llm-timeout must be a number of seconds above 0"),
])
def test_bad_provider_settings_name_the_option(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"base_url": None, "model": None, "api_key_env": None,
                                 "timeout": None, **options}
    with pytest.raises(ProviderConfigError) as error:
        LLMConfig.from_options(environ={}, **arguments)
    assert str(error.value).startswith(message)


def test_the_backend_command_refuses_bad_provider_settings(tmp_path: Path) -> None:
    done = run_cli("backend", "--data", str(tmp_path), "--llm-base-url",
                   "http://models.example.com/v1", "--llm-model", "m", timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: plain http:// is only allowed for loopback hosts; use https:// for "
        "models.example.com")
    assert done.stdout == ""


async def test_the_backend_command_answers_with_the_model_and_never_logs_the_key(
    tmp_path: Path, stand_in: StandIn,
) -> None:
    data = tmp_path / "data"
    store = Store(data)
    store.add_user(EMAIL, PASSWORD)
    store.close()
    env = {**os.environ, "MY_MODEL_KEY": API_KEY, "OROPENDOLA_LLM_MODEL": "from-env"}
    env.pop("OROPENDOLA_LLM_BASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "oropendola_ls", "-vv", "backend", "--data", str(data),
        "--llm-base-url", stand_in.url, "--llm-api-key-env", "MY_MODEL_KEY",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.removeprefix("Listening on ").strip()
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
            sid = await login(client)
            answer = (await call(client, SEND, sid=sid, json={"message": "hi"})).json()
        assert answer["message"]["content"] == "".join(CHUNKS)
        assert answer["message"]["model"] == "from-env"  # the option-less model comes from env
        assert stand_in.headers[0]["Authorization"] == f"Bearer {API_KEY}"
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = err.decode()
    assert f"chat answers come from model from-env at {stand_in.url}" in log
    assert f"asking from-env at {stand_in.url}/chat/completions (2 messages)" in log
    assert API_KEY not in log
