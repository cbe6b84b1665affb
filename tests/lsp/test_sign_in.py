"""Sign-in, status, sign-out and the stored session, end to end over both client presets."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, lsp_session, request, wait_until

REQUEST_FAILED = types.LSPErrorCodes.RequestFailed


def stored_sessions(config_dir: Path) -> dict[str, dict[str, str]]:
    return json.loads((config_dir / "session.json").read_text())["sessions"]


async def test_sign_in_status_sign_out(preset: str, config_dir: Path, backend: BackendProcess
                                       ) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        before = await request(client, "oropendola/status")
        assert before["signedIn"] is False
        assert before["backend"] == {**before["backend"], "url": backend.url,
                                     "environment": "development"}
        assert before["connection"]["maxAttempts"] == 10

        result = await request(client, "oropendola/signIn",
                               {"username": email, "password": password})
        assert result == {"user": email, "fullName": "Test User"}

        after = await request(client, "oropendola/status")
        assert after["signedIn"] is True and after["user"] == email

        info = await request(client, "oropendola/userInfo")
        assert info["profile"]["email"] == email
        sub = await request(client, "oropendola/subscription")
        assert sub["subscription"]["status"] == "Active"

        # The session is stored for the next start, readable by the user only.
        session_file = config_dir / "session.json"
        assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
        assert stored_sessions(config_dir)[backend.url]["user"] == email

        await request(client, "oropendola/signOut")
        assert (await request(client, "oropendola/status"))["signedIn"] is False
        assert backend.url not in stored_sessions(config_dir)
        with pytest.raises(JsonRpcException) as refused:
            await request(client, "oropendola/userInfo")
        assert refused.value.code == REQUEST_FAILED
        assert "Not signed in" in refused.value.message
        assert "oropendola-ls login" in refused.value.message


async def test_wrong_password_is_a_clear_error(preset: str, config_dir: Path,
                                               backend: BackendProcess) -> None:
    email, _, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        with pytest.raises(JsonRpcException) as failed:
            await request(client, "oropendola/signIn", {"username": email, "password": "nope"})
        assert failed.value.code == REQUEST_FAILED
        assert "Wrong email or password" in failed.value.message
        assert (await request(client, "oropendola/status"))["signedIn"] is False
    assert not (config_dir / "session.json").exists()


async def test_api_key_sign_in(preset: str, config_dir: Path, backend: BackendProcess) -> None:
    email, _, output = backend.add_user(api_key=True)
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    key, secret = fields["api_key"], fields["api_secret"]
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        with pytest.raises(JsonRpcException) as bad:
            await request(client, "oropendola/signIn", {"apiKey": key, "apiSecret": "wrong"})
        assert bad.value.code == REQUEST_FAILED
        result = await request(client, "oropendola/signIn", {"apiKey": key, "apiSecret": secret})
        assert result["user"] == email
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email


async def test_api_key_from_settings(preset: str, config_dir: Path, backend: BackendProcess
                                     ) -> None:
    email, _, output = backend.add_user(api_key=True)
    fields = dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)
    settings = {"serverUrl": backend.url, "apiKey": fields["api_key"],
                "apiSecret": fields["api_secret"]}
    async with lsp_session(preset, config_dir, settings) as client:
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email


async def test_stored_session_is_loaded_and_verified_after_initialize(
    preset: str, config_dir: Path, backend: BackendProcess
) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True and status["user"] == email
        for _ in range(200):  # the check runs in the background after `initialized`
            if (await request(client, "oropendola/status"))["session"] == "verified":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the stored session was never verified")


async def test_expired_session_gives_clear_error(preset: str, config_dir: Path,
                                                 backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        done = backend.cli("expire-sessions", email)
        assert done.returncode == 0 and "Expired 1 session" in done.stdout
        with pytest.raises(JsonRpcException) as expired:
            await request(client, "oropendola/userInfo")
        assert expired.value.code == REQUEST_FAILED
        assert "expired" in expired.value.message and "sign in" in expired.value.message
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is False and status["session"] == "expired"
        # Signing in again recovers.
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        assert (await request(client, "oropendola/userInfo"))["profile"]["email"] == email


async def test_expired_stored_session_is_reported_at_start(
    preset: str, config_dir: Path, backend: BackendProcess
) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
    backend.cli("expire-sessions", email)
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await wait_until(lambda: any("expired" in m.message for m in client.messages))
        warning = next(m for m in client.messages if "expired" in m.message)
        assert warning.type == types.MessageType.Warning
        assert "oropendola-ls login" in warning.message
        assert (await request(client, "oropendola/status"))["signedIn"] is False


async def test_user_settings_round_trip(preset: str, config_dir: Path, backend: BackendProcess
                                        ) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        initial = await request(client, "oropendola/settings")
        assert initial["autoApprovalEnabled"] is False
        updated = await request(client, "oropendola/settings",
                                {"update": {"autoApprovalEnabled": True}})
        assert updated["autoApprovalEnabled"] is True
        assert (await request(client, "oropendola/settings"))["autoApprovalEnabled"] is True


async def test_sign_out_command_is_advertised_and_works(
    preset: str, config_dir: Path, backend: BackendProcess
) -> None:
    email, password, _ = backend.add_user()
    async with lsp_session(preset, config_dir, {"serverUrl": backend.url}) as client:
        commands = client.init_result.capabilities.execute_command_provider.commands
        assert {"oropendola.signOut", "oropendola.reconnect"} <= set(commands)
        await request(client, "oropendola/signIn", {"username": email, "password": password})
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="oropendola.signOut"))
        assert (await request(client, "oropendola/status"))["signedIn"] is False
        status = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="oropendola.reconnect"))
        assert status is not None
