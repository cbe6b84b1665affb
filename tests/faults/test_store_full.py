"""A full disk under the three stores the server writes: the session store (sign-in), the
command audit log (a shell command) and the index manifest (indexing). Each failure is reported
with the path and what to do, the server stays up, and what was there before is unchanged.

"Disk full" is a file size limit of 0 (``RLIMIT_FSIZE``, ``SIGXFSZ`` ignored) on the server
process: every write to a regular file fails (EFBIG), whoever runs the tests, root included.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import BackendProcess, request, server_env, wait_until
from tests.faults.stores import disk_full, manifests, run_shell, server, warnings_about


async def test_full_disk_under_every_store(tmp_path: Path, backend: BackendProcess) -> None:
    email, password, _ = backend.add_user()
    config = tmp_path / "config"
    config.mkdir()
    env = server_env(config)
    state, cache = Path(env["OROPENDOLA_STATE_DIR"]), Path(env["OROPENDOLA_CACHE_DIR"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("def main():\n    return 1\n")
    settings = {"serverUrl": backend.url}
    sign_in = {"username": email, "password": password}

    # Before: a session, an audit entry and a manifest, written normally.
    async with server(env, settings, project) as client:
        await request(client, "oropendola/signIn", sign_in)
        assert (await run_shell(client, "echo before", project))["exitCode"] == 0
        assert (await request(client, "oropendola/indexWorkspace"))["filesSent"] == 1
    session, audit = config / "session.json", state / "audit.jsonl"
    (manifest,) = manifests(cache)
    before = {path: path.read_bytes() for path in (session, audit, manifest)}

    (project / "app.py").write_text("def main():\n    return 2\n")
    async with server(env, settings, project, preexec_fn=disk_full) as client:
        # Sign-in: the backend says yes, the store cannot keep it.
        result = await request(client, "oropendola/signIn", sign_in)
        assert result["user"] == email
        await wait_until(lambda: bool(warnings_about(client, session)), 5)
        (told,) = warnings_about(client, session)
        assert "File too large" in told or "No space" in told
        assert "sign in again" in told

        # A shell command: it runs, and the user hears that it could not be audited.
        assert (await run_shell(client, "echo during", project))["exitCode"] == 0
        await wait_until(lambda: bool(warnings_about(client, audit)), 5)
        assert "audit" in warnings_about(client, audit)[0]

        # Indexing: the files reach the backend, the manifest cannot be saved.
        report = await request(client, "oropendola/indexWorkspace")
        assert report["filesSent"] == 1
        (problem,) = report["errors"]
        assert str(manifest) in problem and "sends them again" in problem
        assert "File too large" in problem or "No space" in problem
        await wait_until(lambda: bool(warnings_about(client, manifest)), 5)

        status = await request(client, "oropendola/status")
        assert status["signedIn"] is True
    for path, data in before.items():
        assert path.read_bytes() == data, path
        if path.suffix == ".json":
            json.loads(data)
    assert [p.name for p in config.iterdir()] == ["session.json"]  # no temporary left over
