"""State directories that cannot be created (a regular file stands where they must be:
ENOTDIR, which stops root too) under the session store, the command audit log and the index
manifest: each failure is reported with the path, and the server keeps working signed in.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import BackendProcess, request, server_env, wait_until
from tests.faults.stores import run_shell, server, warnings_about


async def test_state_directories_that_cannot_be_created(tmp_path: Path,
                                                         backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directories must be\n")
    config = blocker / "config"
    env = server_env(config)  # data, state and cache sit beside it: under the file too
    session = config / "session.json"
    audit = Path(env["OROPENDOLA_STATE_DIR"]) / "audit.jsonl"
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("print('hello')\n")
    async with server(env, {"serverUrl": backend.url}, project) as client:
        result = await request(client, "oropendola/signIn",
                               {"username": email, "password": password})
        assert result["user"] == email
        await wait_until(lambda: bool(warnings_about(client, session)), 5)
        assert "Not a directory" in warnings_about(client, session)[0]

        assert (await run_shell(client, "echo audited", project))["exitCode"] == 0
        await wait_until(lambda: bool(warnings_about(client, audit)), 5)
        assert "Not a directory" in warnings_about(client, audit)[0]

        report = await request(client, "oropendola/indexWorkspace")
        assert report["filesSent"] == 1
        (problem,) = report["errors"]
        assert "Cannot save the index manifest" in problem and "Not a directory" in problem
        assert str(Path(env["OROPENDOLA_CACHE_DIR"])) in problem

        assert (await request(client, "oropendola/status"))["signedIn"] is True
        assert (await request(client, "oropendola/chat", {"message": "still here"}))["content"]
    assert blocker.read_text() == "a file where the directories must be\n"
