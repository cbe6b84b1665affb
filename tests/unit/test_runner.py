"""The runner: output, cwd, timeouts and cancellation that kill the whole process group."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from oropendola_ls.safety.runner import OUTPUT_CAP, run_shell


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


async def gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_output_exit_code_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here")
    seen: list[tuple[str, str]] = []
    result = await run_shell("ls; echo oops >&2; exit 3", cwd=tmp_path, time_limit=10,
                             on_output=lambda stream, text: seen.append((stream, text)))
    assert result.exit_code == 3
    assert "marker.txt" in result.stdout and result.stderr == "oops\n"
    assert ("stderr", "oops\n") in seen
    assert not result.timed_out and not result.truncated


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = await run_shell(f"sleep 300 & echo $! > {pidfile}; wait", cwd=tmp_path,
                             time_limit=0.5)
    assert result.timed_out and result.exit_code is not None and result.exit_code < 0
    assert time.monotonic() - started < 5
    assert await gone(int(pidfile.read_text()))


async def test_cancel_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    task = asyncio.ensure_future(run_shell(f"sleep 300 & echo $! > {pidfile}; wait",
                                           cwd=tmp_path, time_limit=60))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    child = int(pidfile.read_text())
    assert alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(child)


async def test_background_stragglers_are_killed_when_the_command_ends(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = await run_shell(f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}", cwd=tmp_path,
                             time_limit=10)
    assert result.exit_code == 0
    assert await gone(int(pidfile.read_text()))


async def test_output_is_capped_and_says_so(tmp_path: Path) -> None:
    size = OUTPUT_CAP + 50_000
    result = await run_shell(f"head -c {size} /dev/zero | tr '\\0' a", cwd=tmp_path,
                             time_limit=10)
    assert result.truncated
    assert result.stdout.startswith("a" * 1000)
    assert result.stdout.split("\n")[0] == "a" * OUTPUT_CAP
    assert "50000 more bytes of stdout not kept" in result.stdout
