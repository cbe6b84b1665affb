"""`oropendola-ls --embedded`: a working, signed-in server with no account and no network."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import lsp_session, request


async def test_embedded_mode_signs_in_a_local_user(preset: str, config_dir: Path,
                                                   tmp_path: Path) -> None:
    args = ("--embedded", "--data", str(tmp_path / "embedded"))
    async with lsp_session(preset, config_dir, {}, args=args) as client:
        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True
        assert status["user"] == "local@oropendola.localhost"
        assert status["backend"]["embedded"] is True
        assert status["backend"]["environment"] == "development"
        assert status["backend"]["url"].startswith("http://127.0.0.1:")
        info = await request(client, "oropendola/userInfo")
        assert info["profile"]["email"] == "local@oropendola.localhost"
        updated = await request(client, "oropendola/settings",
                                {"update": {"autoApprovalEnabled": True}})
        assert updated["autoApprovalEnabled"] is True
    # The embedded session is not written to the user's session store.
    assert not (config_dir / "session.json").exists()
    # Data persists across runs of the embedded backend.
    async with lsp_session(preset, config_dir, {}, args=args) as client:
        assert (await request(client, "oropendola/settings"))["autoApprovalEnabled"] is True
