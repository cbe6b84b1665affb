"""The indexer end to end on real trees: what is sent, what never is, and what a rerun sends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oropendola_ls.workspace import index_folder, index_paths, workspace_id
from oropendola_ls.workspace.manifest import Manifest
from oropendola_ls.workspace.reader import read_candidate
from oropendola_ls.workspace.scanner import Candidate, ScanResult
from tests.workspace.conftest import Recorder, git, requires_git, write

Tree = Callable[..., Path]
TIMEOUT = 60


async def run(root: Path, send: Any, **options: Any) -> Any:
    return await asyncio.wait_for(index_folder(root, send=send, **options), TIMEOUT)


def touch_later(path: Path, seconds: int = 5) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds * 1_000_000_000))


SOURCES: dict[str, str | bytes] = {
    "src/app.py": "def main():\n    return 1\n",
    "src/util.ts": "export const x = 1;\n",
    "README.md": "# Project\n",
    "lib/core.go": "package core\n",
}


# -- the wire body --------------------------------------------------------------------------------


async def test_first_run_sends_every_file_with_the_wire_body(tree: Tree) -> None:
    root = tree(SOURCES)
    send = Recorder()
    report = await run(root, send)
    assert report.ok
    assert sorted(send.paths) == sorted(SOURCES)
    body = send.bodies[0]
    assert body["workspace_id"] == workspace_id(root)
    assert body["workspace_id"].startswith("ws-") and len(body["workspace_id"]) == 19
    assert body["workspace_name"] == root.name
    assert body["removed"] == []
    assert body["force_rebuild"] is False
    entry = next(f for f in body["files"] if f["path"] == "src/app.py")
    raw = (root / "src/app.py").read_bytes()
    assert entry == {"path": "src/app.py", "language": "python", "content": raw.decode(),
                     "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    languages = {f["path"]: f["language"] for f in body["files"]}
    assert languages["src/util.ts"] == "typescript"
    assert languages["README.md"] == "markdown"
    assert languages["lib/core.go"] == "go"
    json.dumps(send.bodies)  # the body is plain JSON
    result = report.to_json()
    assert result["filesScanned"] == 4
    assert result["filesSent"] == 4
    assert result["filesSkipped"] == 0
    assert result["bytesSent"] == sum(len(v) for v in SOURCES.values())
    assert {"durationMs", "scanMs", "sendMs", "removed", "skipped"} <= result.keys()
    assert "errors" not in result


async def test_batches_are_bounded_by_count_and_bytes(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"f{i:02d}.txt": "x" * 1000 for i in range(10)}
    root = tree(files)
    send = Recorder()
    await run(root, send, batch_max_files=3)
    assert [len(b["files"]) for b in send.bodies] == [3, 3, 3, 1]
    send = Recorder()
    await run(tree(files), send, batch_max_bytes=2500)
    assert [len(b["files"]) for b in send.bodies] == [2] * 5


# -- secrets never leave --------------------------------------------------------------------------

PEM_BODY = "\n".join(["MIIEowIBAAKCAQEAcanaryCANARY0zZ" + "Qw8Er5Ty2Ui9Op4As7Df1Gh6" * 2] * 5)
CANARY_TREE: dict[str, str | bytes] = {
    ".env": "CANARY_DB_PASSWORD=canary-env-1\nOPENAI_API_KEY=sk-canary-env-2\n",
    ".env.example": "API_KEY=canary-env-example-3\n",
    "config/.env.production": "TOKEN=canary-env-4\n",
    "keys/id_rsa": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n",
    "keys/id_rsa.pub": "ssh-rsa AAAAB3NzaC1yc2E public-key\n",
    "certs/server.pem": "-----BEGIN CERTIFICATE-----\ncanary-cert-5\n-----END CERTIFICATE-----\n",
    "src/config.py": (
        'import os\n\nOPENAI_API_KEY = "sk-canary-6abcdef0123456789"\n'
        'DATABASE_URL = "postgres://app:canary-pw-7x@db:5432/app"\n'
        "GITHUB = 'ghp_canary8aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n"
        "def connect():\n    return os.environ['DATABASE_URL']\n"
    ),
    "deploy/values.yaml": 'db:\n  password: "canary-pass-9"\n  host: db.internal\n',
    "gcp/sa.json": json.dumps({
        "type": "service_account", "client_email": "x@y.iam.gserviceaccount.com",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\n",
    }),
    "docs/setup.md": "Run `make` and see https://example.com/docs.\n",
}


async def test_planted_canaries_never_reach_send(tree: Tree) -> None:
    root = tree(CANARY_TREE)
    os.symlink(".env", root / "settings.txt")  # a secret file behind an innocent name
    send = Recorder()
    report = await run(root, send)
    assert report.ok
    wire = json.dumps(send.bodies)
    assert "canary" not in wire.lower()
    assert "PRIVATE KEY" not in wire
    assert sorted(send.paths) == ["deploy/values.yaml", "docs/setup.md", "gcp/sa.json",
                                  "keys/id_rsa.pub", "src/config.py"]
    config = send.content("src/config.py")
    assert 'OPENAI_API_KEY = "[REDACTED:' in config
    assert "return os.environ['DATABASE_URL']" in config
    assert report.skipped["secret_file"] == 6
    assert report.redactions["private_key"] == 1
    assert "canary" not in json.dumps(report.to_json()).lower()


@requires_git
async def test_secret_files_are_not_sent_even_when_tracked_and_unignored(tree: Tree) -> None:
    root = tree({".env": "SECRET=canary-tracked\n", "a.py": "a\n",
                 ".oropendolaignore": "!.env\n"}, git_repo=True, commit=True)
    send = Recorder()
    await run(root, send)
    assert sorted(send.paths) == [".oropendolaignore", "a.py"]
    assert "canary" not in json.dumps(send.bodies)


# -- incremental runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=requires_git)])
async def test_second_run_sends_nothing_and_edits_send_exactly_that_file(
    tree: Tree, use_git: bool
) -> None:
    root = tree(SOURCES, git_repo=use_git, commit=use_git)
    send = Recorder()
    await run(root, send, use_git=use_git)
    assert len(send.paths) == 4

    send.clear()
    report = await run(root, send, use_git=use_git)
    assert send.calls == 0
    assert report.files_sent == 0
    assert report.unchanged == 4

    (root / "src/app.py").write_text("def main():\n    return 2\n")
    touch_later(root / "src/app.py")
    report = await run(root, send, use_git=use_git)
    assert send.paths == ["src/app.py"]
    assert send.content("src/app.py").endswith("return 2\n")
    assert report.files_sent == 1 and report.unchanged == 3

    send.clear()
    (root / "README.md").unlink()
    report = await run(root, send, use_git=use_git)
    assert send.paths == []
    assert send.removed == ["README.md"]
    assert report.removed == 1
    manifest = Manifest.load(root)
    assert "README.md" not in manifest.files
    assert sorted(manifest.files) == ["lib/core.go", "src/app.py", "src/util.ts"]


async def test_touched_but_unchanged_file_is_not_sent(tree: Tree) -> None:
    root = tree(SOURCES)
    send = Recorder()
    await run(root, send)
    send.clear()
    touch_later(root / "README.md")
    report = await run(root, send)
    assert send.calls == 0
    assert report.unchanged == 3  # the fourth was read and hashed: same content
    entry = Manifest.load(root).files["README.md"]
    assert entry.mtime_ns == (root / "README.md").stat().st_mtime_ns
    report = await run(root, send)
    assert report.unchanged == 4  # the new mtime was saved: not even read again


async def test_files_that_become_ignored_or_skipped_are_removed(tree: Tree) -> None:
    root = tree({**SOURCES, "data.txt": "plain text\n", "notes.txt": "notes\n"})
    send = Recorder()
    await run(root, send)
    send.clear()
    (root / "data.txt").write_bytes(b"now binary\x00\x01")
    touch_later(root / "data.txt")
    (root / ".oropendolaignore").write_text("notes.txt\n")
    report = await run(root, send)
    assert sorted(send.removed) == ["data.txt", "notes.txt"]
    assert send.paths == [".oropendolaignore"]
    assert report.skipped["binary"] == 1
    send.clear()
    report = await run(root, send, exclude=["src/"])
    assert sorted(send.removed) == ["src/app.py", "src/util.ts"]
    send.clear()
    report = await run(root, send, exclude=["src/"])
    assert send.calls == 0
    assert report.skipped["binary"] == 1  # remembered: the unchanged binary is not read again


async def test_force_resends_everything_and_rebuilds(tree: Tree) -> None:
    root = tree(SOURCES)
    send = Recorder()
    await run(root, send)
    send.clear()
    report = await run(root, send, force=True, batch_max_files=3)
    assert sorted(send.paths) == sorted(SOURCES)
    assert [b["force_rebuild"] for b in send.bodies] == [True, False]
    assert report.files_sent == 4


async def test_force_on_an_empty_folder_still_tells_the_backend(tree: Tree) -> None:
    root = tree({})
    send = Recorder()
    await run(root, send, force=True)
    assert send.bodies == [{"workspace_id": workspace_id(root), "workspace_name": root.name,
                            "files": [], "removed": [], "force_rebuild": True}]


# -- interruptions, failures, retries -------------------------------------------------------------


async def test_interrupted_run_resumes_without_resending(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"m{i}.py": f"x = {i}\n" for i in range(9)}
    root = tree(files)

    def cancel_second(call: int, body: dict[str, Any]) -> None:
        if call == 2:
            raise asyncio.CancelledError

    first = Recorder(fail=cancel_second)
    with pytest.raises(asyncio.CancelledError):
        await run(root, first, batch_max_files=3)
    acknowledged = first.paths
    assert len(acknowledged) == 3

    resumed = Recorder()
    report = await run(root, resumed, batch_max_files=3)
    assert sorted(resumed.paths) == sorted(set(files) - set(acknowledged))
    assert report.unchanged == 3
    again = Recorder()
    await run(root, again)
    assert again.calls == 0


async def test_interrupted_force_run_resumes_without_resending(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"m{i}.py": f"x = {i}\n" for i in range(6)}
    root = tree(files)
    await run(root, Recorder())

    def cancel_second(call: int, body: dict[str, Any]) -> None:
        if call == 2:
            raise asyncio.CancelledError

    forced = Recorder(fail=cancel_second)
    with pytest.raises(asyncio.CancelledError):
        await run(root, forced, force=True, batch_max_files=2)
    assert forced.bodies[0]["force_rebuild"] is True
    resumed = Recorder()
    await run(root, resumed, batch_max_files=2)
    # The backend dropped everything at the forced batch: all but its two files come again.
    assert sorted(resumed.paths) == sorted(set(files) - set(forced.paths))


async def test_failed_send_is_retried_then_reported(tree: Tree) -> None:
    root = tree(SOURCES)

    def always(call: int, body: dict[str, Any]) -> None:
        raise ConnectionError("backend down")

    failing = Recorder(fail=always)
    report = await run(root, failing, retry_delay=0)
    assert failing.calls == 3
    assert not report.ok
    assert "after 3 attempts" in report.errors[0] and "backend down" in report.errors[0]
    assert report.to_json()["errors"] == report.errors
    assert Manifest.load(root).files == {}

    def once(call: int, body: dict[str, Any]) -> None:
        if call == 1:
            raise RuntimeError("502 Bad Gateway")

    flaky = Recorder(fail=once)
    report = await run(root, flaky, retry_delay=0)
    assert report.ok
    assert flaky.calls == 2
    assert sorted(flaky.paths) == sorted(SOURCES)


async def test_failure_midway_keeps_what_was_acknowledged(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"m{i}.py": f"x = {i}\n" for i in range(6)}
    root = tree(files)

    def third_fails(call: int, body: dict[str, Any]) -> None:
        if call >= 3:
            raise OSError("connection reset")

    send = Recorder(fail=third_fails)
    report = await run(root, send, batch_max_files=2, retry_delay=0)
    assert report.files_sent == 4
    assert len(report.errors) == 1
    assert len(Manifest.load(root).files) == 4
    resumed = Recorder()
    await run(root, resumed)
    assert len(resumed.paths) == 2


async def test_progress_reports(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"m{i}.py": f"x = {i}\n" for i in range(5)}
    root = tree(files)
    seen: list[tuple[int, int, str]] = []
    await run(root, Recorder(), batch_max_files=2,
              progress=lambda done, total, message: seen.append((done, total, message)))
    assert seen[0] == (0, 5, "Indexing 0/5 files")
    assert seen[-1] == (5, 5, "Indexing 5/5 files")
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)

    def broken(done: int, total: int, message: str) -> None:
        raise ValueError("a broken callback must not stop indexing")

    report = await run(tree(files), Recorder(), progress=broken)
    assert report.files_sent == 5


async def test_event_loop_stays_responsive(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"d{i // 50}/m{i}.py": "token = 1\n" * 300
                                     for i in range(400)}
    root = tree(files)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await run(root, Recorder())
    done.set()
    await task
    assert ticks > 5


# -- skips found by reading -----------------------------------------------------------------------


async def test_content_skips(tree: Tree) -> None:
    mostly_text = ("café" * 10).encode("latin-1") + b"\n" + b"plain ascii text " * 100
    mostly_binary = bytes(range(128, 256)) * 20
    root = tree({
        "ok.py": "x = 1\n",
        "blob.raw": b"header\x00" + b"y" * 100,
        "late-nul.txt": b"t" * 9000 + b"\x00",
        "latin.txt": mostly_text,
        "garbage.txt": mostly_binary,
        "empty.txt": b"",
    })
    send = Recorder()
    report = await run(root, send)
    assert sorted(send.paths) == ["empty.txt", "late-nul.txt", "latin.txt", "ok.py"]
    assert report.skipped == {"binary": 1, "invalid_utf8": 1}
    latin = send.content("latin.txt")
    assert "\ufffd" in latin and latin.endswith("plain ascii text ")
    entry = next(f for b in send.bodies for f in b["files"] if f["path"] == "latin.txt")
    assert entry["sha256"] == hashlib.sha256(mostly_text).hexdigest()
    assert entry["size"] == len(mostly_text)


async def test_file_deleted_between_scan_and_read_is_vanished(tree: Tree) -> None:
    root = tree(SOURCES)

    def delete(scan: ScanResult) -> None:
        (root / "README.md").unlink()

    send = Recorder()
    report = await run(root, send, after_scan=delete)
    assert report.skipped == {"vanished": 1}
    assert "README.md" not in send.paths
    assert len(send.paths) == 3


async def test_file_deleted_while_an_earlier_batch_is_sent(tree: Tree) -> None:
    files: dict[str, str | bytes] = {f"m{i}.py": f"x = {i}\n" for i in range(8)}
    root = tree(files)

    def delete_last(call: int, body: dict[str, Any]) -> None:
        if call == 1:
            (root / "m7.py").unlink(missing_ok=True)

    send = Recorder(fail=delete_last)
    report = await run(root, send, batch_max_files=2)
    assert "m7.py" not in send.paths
    assert report.skipped == {"vanished": 1}
    assert len(send.paths) == 7


async def test_file_replaced_by_a_fifo_after_the_scan_does_not_hang(tree: Tree) -> None:
    root = tree(SOURCES)

    def to_fifo(scan: ScanResult) -> None:
        (root / "README.md").unlink()
        os.mkfifo(root / "README.md")

    report = await run(root, Recorder(), after_scan=to_fifo)
    assert report.skipped == {"not_regular": 1}


async def test_file_that_grew_too_large_after_the_scan(tree: Tree) -> None:
    root = tree(SOURCES)

    def grow(scan: ScanResult) -> None:
        with open(root / "README.md", "ab") as handle:
            handle.write(b"x" * 5000)

    report = await run(root, Recorder(), max_file_size=4096, after_scan=grow)
    assert report.skipped == {"too_large": 1}


async def test_scan_skips_reach_the_report(tree: Tree) -> None:
    root = tree({"a.py": "a\n", ".env": "X=1\n", "node_modules/x/i.js": "x\n", "huge.log": ""})
    os.truncate(root / "huge.log", 50 * 1024 * 1024)  # sparse: takes no disk
    os.mkfifo(root / "fifo")
    os.symlink("/etc", root / "etc")
    os.symlink("loop", root / "loop")
    report = await run(root, Recorder(), use_git=False)
    assert report.skipped == {"too_large": 1, "secret_file": 1, "generated": 1,
                              "not_regular": 1, "symlink_outside": 1, "symlink_loop": 1}
    assert report.files_skipped == 6
    assert report.files_scanned == 7
    assert report.skipped_examples["too_large"] == ["huge.log"]


def test_unreadable_file_as_an_unprivileged_user() -> None:
    """Root reads any file, so the read runs in a forked child that drops to ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    directory = Path(tempfile.mkdtemp(prefix="oropendola-unreadable-"))
    try:
        os.chmod(directory, 0o755)
        path = directory / "locked.py"
        path.write_text("x = 1\n")
        os.chmod(path, 0)
        info = path.stat()
        candidate = Candidate("locked.py", str(path), info.st_size, info.st_mtime_ns)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop privileges, read, report, leave at once
            try:
                os.setgid(65534)
                os.setuid(65534)
                result = read_candidate(candidate, 1 << 20)
                os.write(write_end, str(result if isinstance(result, str) else "read").encode())
            finally:
                os._exit(0)
        os.close(write_end)
        answer = os.read(read_end, 100).decode()
        os.close(read_end)
        os.waitpid(pid, 0)
        assert answer == "unreadable"
    finally:
        os.chmod(directory / "locked.py", stat.S_IRUSR | stat.S_IWUSR)
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()


async def test_dangling_symlink_is_unreadable(tree: Tree) -> None:
    root = tree({"a.py": "a\n"})
    os.symlink("gone.py", root / "b.py")
    report = await run(root, Recorder())
    assert report.skipped == {"unreadable": 1}


# -- partial runs: saves and file-watcher events --------------------------------------------------


@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=requires_git)])
async def test_index_paths(tree: Tree, use_git: bool, tmp_path: Path) -> None:
    root = tree({**SOURCES, ".gitignore": "*.log\n"}, git_repo=use_git)
    await run(root, Recorder(), use_git=use_git)

    (root / "src/app.py").write_text("changed = True\n")
    touch_later(root / "src/app.py")
    (root / "README.md").unlink()
    write(root, {"new/a.py": "a\n", "new/b.py": "b\n", "debug.log": "ignored\n"})
    send = Recorder()
    report = await asyncio.wait_for(index_paths(
        root, [root / "src/app.py", "README.md", root / "new", "debug.log",
               tmp_path / "elsewhere.py"],
        send=send, use_git=use_git,
    ), TIMEOUT)
    assert report.ok
    assert sorted(send.paths) == ["new/a.py", "new/b.py", "src/app.py"]
    assert send.removed == ["README.md"]
    assert report.files_scanned == 3

    send.clear()
    (root / "new/a.py").unlink()
    (root / "new/b.py").unlink()
    (root / "new").rmdir()
    await index_paths(root, [root / "new"], send=send, use_git=use_git)
    assert sorted(send.removed) == ["new/a.py", "new/b.py"]

    send.clear()
    report = await index_paths(root, [tmp_path / "outside.py"], send=send, use_git=use_git)
    assert send.calls == 0 and report.files_scanned == 0
    full = Recorder()
    await run(root, full, use_git=use_git)
    assert full.calls == 0  # index_paths left the manifest exactly as a full run would


async def test_index_paths_of_the_folder_itself_is_a_full_run(tree: Tree) -> None:
    root = tree(SOURCES)
    send = Recorder()
    await index_paths(root, [root], send=send)
    assert len(send.paths) == 4


# -- manifest robustness --------------------------------------------------------------------------


async def test_corrupt_manifest_starts_afresh(tree: Tree) -> None:
    root = tree(SOURCES)
    await run(root, Recorder())
    manifest = Manifest.load(root)
    manifest.path.write_text("{not json")
    send = Recorder()
    report = await run(root, send)
    assert report.ok
    assert len(send.paths) == 4
    assert json.loads(manifest.path.read_text())["files"].keys() == set(SOURCES)


async def test_manifest_location_and_modes(tree: Tree, tmp_path: Path) -> None:
    root = tree(SOURCES)
    await run(root, Recorder())
    path = tmp_path / "cache" / "index" / f"{workspace_id(root)}.json"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    entry = data["files"]["src/app.py"]
    assert set(entry) == {"size", "mtime_ns", "sha256"}
    assert not path.with_suffix(".journal").exists()


async def test_not_a_directory(tmp_path: Path) -> None:
    report = await run(tmp_path / "missing", Recorder())
    assert report.errors and "not a directory" in report.errors[0]


async def test_concurrent_runs_of_one_folder_are_serialised(tree: Tree) -> None:
    root = tree(SOURCES)
    first, second = Recorder(), Recorder()
    await asyncio.gather(run(root, first), run(root, second))
    assert len(first.paths) + len(second.paths) == 4


@requires_git
async def test_git_repository_with_ignored_and_generated_content(tree: Tree) -> None:
    root = tree({
        ".gitignore": "dist/\n*.log\n",
        "src/a.py": "a\n", "dist/bundle.js": "b\n", "x.log": "l\n",
        "vendor/lib/v.go": "v\n", "yarn.lock": "lock\n",
    }, git_repo=True, commit=True)
    send = Recorder()
    report = await run(root, send)
    assert report.mode == "git"
    assert sorted(send.paths) == [".gitignore", "src/a.py"]
    assert report.skipped == {"generated": 2}
    git(root, "rm", "-q", "--cached", "src/a.py")  # untracked now, still not ignored
    again = Recorder()
    await run(root, again)
    assert again.calls == 0
