"""Backend JavaScript (`eval_js`) is never run, whatever its shape.

tests/lsp/test_realtime.py::test_msgprint_is_shown_and_eval_js_is_never_run covers string
payloads in all four editors' recordings (no file written, nothing shown). Here: the events are
proven to have arrived (the server logs each one as ignored, with its size only), payloads of
every JSON shape (string, object with ``code``/``script``, list) neither run nor reach the
editor (no message, progress or request carries them, nor does the log), and the connection
stays up afterwards.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import BackendProcess, lsp_session, request, wait_until
from tests.lsp.test_realtime import signed_in, wait_for_state


async def test_eval_js_of_any_shape_is_logged_and_never_run(
        config_dir: Path, backend: BackendProcess, tmp_path: Path) -> None:
    trace = tmp_path / "eval-js-ran"
    log_file = tmp_path / "server.log"
    shell = f"touch {trace}"
    python = f"__import__('pathlib').Path({str(trace)!r}).write_text('ran')"
    node = f"require('fs').writeFileSync({str(trace)!r}, 'ran')"
    payloads = [shell, {"code": python, "script": node}, [node, shell], {"js": node}]
    incoming: list[str] = []
    async with lsp_session("neovim", config_dir, {"serverUrl": backend.url},
                           args=("-v", "--log-file", str(log_file))) as client:
        original = client.protocol.structure_message

        def keep(data: dict[str, object]) -> object:
            incoming.append(repr(data))
            return original(data)

        client.protocol.structure_message = keep  # type: ignore[method-assign]
        email = await signed_in(client, backend)
        await wait_for_state(client, "connected")
        for payload in payloads:
            backend.control("emit", user=email, event="eval_js", data=payload)
        await wait_until(lambda: log_file.read_text().count("ignored an eval_js event")
                         == len(payloads), 15)
        assert (await request(client, "oropendola/status"))["connection"]["state"] == \
            "connected"
    assert not trace.exists()
    log_text = log_file.read_text()
    assert "backend JavaScript is never run" in log_text
    for marker in ("writeFileSync", "touch ", "__import__"):
        assert marker not in log_text  # the code itself is not even logged
        assert not any(marker in text for text in incoming), marker
