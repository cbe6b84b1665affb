"""Bad settings, malformed params and unknown methods: clear errors, and the server stays up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcMethodNotFound

from tests.conftest import BackendProcess, lsp_session, request, server_env, wait_until

CUSTOM_METHODS = ["oropendola/signIn", "oropendola/signOut", "oropendola/status",
                  "oropendola/userInfo", "oropendola/subscription", "oropendola/settings"]


@pytest.mark.parametrize(
    ("settings", "setting", "words"),
    [
        ({"serverUrl": "http://oropendola.example.com"}, "serverUrl", "https://"),
        ({"serverUrl": "not a url"}, "serverUrl", "not a backend URL"),
        ({"profile": "frappe"}, "profile", "oropendola_ai"),
        ({"apiRequestTimeout": "soon"}, "apiRequestTimeout", "positive number"),
        ({"fallbackUrls": "https://a.example"}, "fallbackUrls", "list of strings"),
        ({"endpoints": {"chat.nope": "x.y"}}, "endpoints", "unknown endpoint"),
    ],
    ids=["http-non-loopback", "not-a-url", "unknown-profile", "wrong-type", "not-a-list",
         "unknown-endpoint"],
)
async def test_bad_setting_is_reported_once_and_default_kept(
    preset: str, config_dir: Path, settings: dict[str, object], setting: str, words: str
) -> None:
    async with lsp_session(preset, config_dir, settings) as client:
        await wait_until(lambda: any(setting in m.message for m in client.messages))
        reports = [m for m in client.messages if f"oropendola.{setting}" in m.message]
        assert len(reports) == 1, [m.message for m in client.messages]
        assert words in reports[0].message and "default" in reports[0].message
        assert reports[0].type == types.MessageType.Warning
        status = await request(client, "oropendola/status")
        if setting == "serverUrl":
            assert status["backend"]["url"] == "https://oropendola.ai/"
            assert status["backend"]["environment"] == "production"
        if setting == "profile":
            assert status["backend"]["profile"] == "oropendola"
        # Pushing the same bad configuration again does not repeat the message.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"oropendola": settings}))
        await request(client, "oropendola/status")
        assert len([m for m in client.messages if f"oropendola.{setting}" in m.message]) == 1


async def test_configuration_change_is_applied(preset: str, config_dir: Path,
                                               backend: BackendProcess) -> None:
    async with lsp_session(preset, config_dir, {}, configuration={}) as client:
        assert (await request(client, "oropendola/status"))["backend"]["url"] == (
            "https://oropendola.ai/")
        client.set_configuration({"serverUrl": backend.url}, section="oropendola")
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"oropendola": {"serverUrl": backend.url}}))
        for _ in range(100):
            status = await request(client, "oropendola/status")
            if status["backend"]["url"] == backend.url:
                break
        assert status["backend"]["url"] == backend.url
        assert status["backend"]["environment"] == "development"


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("oropendola/signIn", {"username": 42, "password": "x"}, "username"),
        ("oropendola/signIn", {"username": "a@b.c"}, "password"),
        ("oropendola/signIn", {"apiKey": "k", "apiSecret": ["s"]}, "apiSecret"),
        ("oropendola/signIn", [1, 2], "params"),
        ("oropendola/settings", {"update": "yes"}, "update"),
        ("oropendola/status", "everything", "params"),
        ("oropendola/signOut", 7, "params"),
        ("oropendola/userInfo", ["me"], "params"),  # [] alone is Lua's {}: accepted
        ("oropendola/subscription", True, "params"),
    ],
)
async def test_malformed_params_name_the_field(preset: str, config_dir: Path, method: str,
                                               params: object, field: str) -> None:
    async with lsp_session(preset, config_dir, {"serverUrl": "http://127.0.0.1:9/"}) as client:
        with pytest.raises(JsonRpcInvalidParams) as invalid:
            await request(client, method, params)
        assert field in invalid.value.message and method in invalid.value.message
        assert (await request(client, "oropendola/status"))["signedIn"] is False


async def test_unknown_method_and_command(preset: str, config_dir: Path) -> None:
    async with lsp_session(preset, config_dir, {}) as client:
        with pytest.raises(JsonRpcMethodNotFound):
            await request(client, "oropendola/doesNotExist")
        with pytest.raises(JsonRpcMethodNotFound):
            await request(client, "unknown/method")
        with pytest.raises(JsonRpcException):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="oropendola.rmRf"))
        assert "backend" in await request(client, "oropendola/status")


async def test_secrets_never_reach_logs_or_errors(preset: str, config_dir: Path,
                                                  backend: BackendProcess, tmp_path: Path) -> None:
    email, password, output = backend.add_user(api_key=True)
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    log_file = tmp_path / "server.log"
    errors: list[str] = []
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url},
                           args=("-vv", "--log-file", str(log_file)),
                           env=server_env(config_dir)) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        first_sid = stored_sid(config_dir, backend.url)
        await request(client, "oropendola/userInfo")
        backend.cli("expire-sessions", email)
        for method in ("oropendola/userInfo", "oropendola/subscription"):
            with pytest.raises(JsonRpcException) as refused:
                await request(client, method)
            errors.append(refused.value.message)
        with pytest.raises(JsonRpcException) as bad_secret:
            await request(client, "oropendola/signIn",
                          {"apiKey": fields["api_key"], "apiSecret": fields["api_secret"] + "x"})
        errors.append(bad_secret.value.message)
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        shown = [m.message for m in client.messages] + [m.message for m in client.log_messages]
    second_sid = stored_sid(config_dir, backend.url)
    assert first_sid != second_sid
    log_text = log_file.read_text()
    assert "signed in as" in log_text  # the log is real and verbose
    for secret in (first_sid, second_sid, password, fields["api_secret"]):
        assert secret not in log_text
        assert all(secret not in text for text in errors + shown)


def stored_sid(config_dir: Path, url: str) -> str:
    sid = json.loads((config_dir / "session.json").read_text())["sessions"][url]["sid"]
    assert isinstance(sid, str) and len(sid) >= 16
    return sid


def test_garbage_on_stdin_does_not_stop_the_server(config_dir: Path) -> None:
    """Bytes no LSP client would send: truncated JSON, invalid UTF-8, a wrong envelope, a
    standard request with params of the wrong shape (pygls alone would never answer it)."""

    def frame(body: bytes) -> bytes:
        return f"Content-Length: {len(body)}\r\n\r\n".encode() + body

    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    ]
    stdin = b"".join(frame(json.dumps(m).encode()) for m in messages)
    stdin += frame(b'{"jsonrpc": "2.0", "id": 2, "method": ')
    stdin += frame(b"\xff\xfe\x00 not utf-8")
    stdin += frame(b'["not", "an", "object"]')
    stdin += frame(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "textDocument/hover",
                               "params": {"textDocument": 5}}).encode())
    stdin += frame(json.dumps(
        {"jsonrpc": "2.0", "id": 3, "method": "oropendola/status", "params": {}}).encode())
    stdin += frame(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "shutdown"}).encode())
    stdin += frame(json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode())
    done = subprocess.run([sys.executable, "-m", "oropendola_ls"], input=stdin,
                          capture_output=True, timeout=60, env=server_env(config_dir), check=False)
    answers = {}
    rest = done.stdout
    while rest:
        header, _, rest = rest.partition(b"\r\n\r\n")
        length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        message, rest = json.loads(rest[:length]), rest[length:]
        if "id" in message:
            answers[message["id"]] = message
    assert answers[5]["error"]["code"] == -32602
    assert "textDocument/hover" in answers[5]["error"]["message"]
    assert "position" in answers[5]["error"]["message"]
    assert answers[3]["result"]["signedIn"] is False
    assert answers[4]["result"] is None
