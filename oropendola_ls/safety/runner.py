"""Running an approved shell command: its own process group, a timeout, streamed output.

The gate has already decided by the time `run_shell` is called; this module only executes the
exact text it is given, with bash (the dialect the gate parses), and makes sure that a timeout
or a cancellation kills every process the command started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import attrs

OUTPUT_CAP = 256 * 1024
"""Bytes kept per stream (stdout, stderr) in the result; the rest is counted, not kept.
Progress reports still show every line."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL to the process group."""

Stream = Literal["stdout", "stderr"]
OutputSink = Callable[[Stream, str], None]


@attrs.frozen
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False
    truncated: bool = False


class _Capture:
    def __init__(self, name: Stream, sink: OutputSink | None) -> None:
        self.name = name
        self.sink = sink
        self.kept = bytearray()
        self.dropped = 0

    async def drain(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            room = OUTPUT_CAP - len(self.kept)
            self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - room)
            if self.sink is not None:
                self.sink(self.name, chunk.decode("utf-8", errors="replace"))

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[oropendola-ls: {self.dropped} more bytes of {self.name} not kept]"
        return text


def shell_path() -> str:
    return shutil.which("bash") or "/bin/sh"


async def run_shell(
    command: str,
    *,
    cwd: Path,
    time_limit: float,
    on_output: OutputSink | None = None,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Run ``command`` with ``bash -c`` in ``cwd``; kill its process group on timeout/cancel."""
    started = time.monotonic()
    spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
        shell_path(),
        "-c",
        command,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: killpg reaches every child
    ))
    try:
        # Shielded: cancelled while starting, asyncio would kill only the shell it started,
        # not the children it may already have spawned; this way the whole group is killed.
        process = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        process = await spawn
        await _kill_group(process)
        raise
    assert process.stdout is not None and process.stderr is not None
    out, err = _Capture("stdout", on_output), _Capture("stderr", on_output)
    timed_out = False
    try:
        async with asyncio.timeout(time_limit):
            await asyncio.gather(out.drain(process.stdout), err.drain(process.stderr))
            await process.wait()
    except TimeoutError:
        timed_out = True
        await _kill_group(process)
    except asyncio.CancelledError:
        await asyncio.shield(_kill_group(process))
        raise
    finally:
        await _kill_group(process, only_stragglers=True)
    return RunResult(
        exit_code=process.returncode,
        stdout=out.text(),
        stderr=err.text(),
        duration_ms=round((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        truncated=bool(out.dropped or err.dropped),
    )


async def _kill_group(
    process: asyncio.subprocess.Process, *, only_stragglers: bool = False
) -> None:
    """SIGTERM the whole group, then SIGKILL what is left after `KILL_GRACE`.

    With ``only_stragglers`` the leader has exited: children it left running in the group
    (``sleep 100 &``) are killed without waiting.
    """
    pgid = process.pid  # start_new_session made the leader's pid the group id
    if only_stragglers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    await process.wait()
