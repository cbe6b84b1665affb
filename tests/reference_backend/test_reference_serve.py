"""`serve()`: the blocking entry point prints its address, serves, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx

SCRIPT = """
import sys
from pathlib import Path
from oropendola_ls.reference_backend import serve
sys.exit(serve(data_dir=Path(sys.argv[1]), host="127.0.0.1", port=0,
               profiles=("oropendola_ai",), session_expiry=3600))
"""


async def test_serve_prints_address_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.fullmatch(r"Listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        assert int(match.group(2)) > 0
        async with httpx.AsyncClient() as client:
            response = await client.get(match.group(1) + "/api/method/ping")
            assert response.json() == {"message": "pong"}
            seed = await client.get(match.group(1) + "/api/method/oropendola.auth.login")
            assert seed.status_code == 417  # only the published app's names were asked for
            login = await client.get(
                match.group(1) + "/api/method/login", params={"usr": "a@b.c", "pwd": "secret"}
            )
            assert login.status_code == 401
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 10)
        assert process.returncode == 0, err.decode()
        assert out == b""  # nothing after the one line
        assert b"secret" not in err  # the access log leaves the query string out
        assert (tmp_path / "data" / "backend.sqlite3").exists()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
