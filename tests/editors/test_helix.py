"""Helix 25.01 with the shipped ``client-configs/helix``, driven through tmux.

Helix has no scripting API, so the test types into a real ``hx`` in a private tmux server
(``send-keys``), reads the screen (``capture-pane``), and takes Helix's own transport log
(``hx -v --log FILE``: every JSON-RPC message in both directions) as the evidence. The shipped
``languages.toml`` and ``config.toml`` are linked into ``$XDG_CONFIG_HOME/helix/`` unchanged.

The flow in the sample workspace: ``:write`` app.py (analysis diagnostics, ``analyzeOnSave``
from the shipped ``config``), ``space a`` lists the Oropendola actions; "Send to Oropendola" in
notes.oropendola.md streams the answer into the document with ``workspace/applyEdit``; in
tasks.sh the selected ``touch done.txt`` is run, Helix answers the server's
``window/showMessageRequest`` with -32601, and the "Confirm: run …" code action runs it;
``:lsp-workspace-command oropendola.indexWorkspace`` then ``space S`` searches the workspace.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.editors.conftest import CLIENT_CONFIGS, EditorSetup, editor_binary

HELIX_CONFIG = CLIENT_CONFIGS / "helix"
RECORDED = Path(__file__).parents[1] / "capabilities" / "helix_v25.01.1.json"
EDITOR_TIMEOUT = 60  # seconds: `timeout` ends hx (and so its server) whatever happens
WAIT = 15.0  # seconds for any one step (generous: CI machines run the editors in parallel)
START_WAIT = 30.0  # seconds for Helix and the server to start
POLL = 0.05
T = TypeVar("T")

_TRANSPORT = re.compile(r"helix_lsp::transport \[INFO\] oropendola (->|<-) (\{.*\})$")
_SGR = re.compile(r"\x1b\[([0-9;]*)m")


class HelixLog:
    """The JSON-RPC messages between Helix and oropendola, from ``hx -v --log``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """(``"sent"`` by Helix | ``"received"`` from the server, message), in order."""
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            match = _TRANSPORT.search(line)
            if not match:
                continue
            try:
                message = json.loads(match[2])
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("jsonrpc") == "2.0":
                found.append(("sent" if match[1] == "->" else "received", message))
        return found

    def requests(self, direction: str, method: str) -> list[dict[str, Any]]:
        return [m for d, m in self.messages() if d == direction and m.get("method") == method]

    def reply(self, direction: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The reply (going ``direction``) to ``request``."""
        return next((m for d, m in self.messages()
                     if d == direction and "method" not in m and m.get("id") == request["id"]),
                    None)

    def tail(self, lines: int = 40) -> str:
        """The last lines about oropendola (and every error), clipped."""
        try:
            text = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        text = [line for line in text if " oropendola " in line or "[ERROR]" in line]
        return "\n".join(line[:400] for line in text[-lines:])


class Helix:
    """``hx`` in a tmux server of its own (a private socket: parallel tests never meet)."""

    def __init__(self, tmux: str, socket: Path, log: HelixLog) -> None:
        self.base = [tmux, "-S", str(socket), "-f", "/dev/null"]
        self.log = log
        self.session = "helix"

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=10,
                              check=False)
        if check and done.returncode != 0:
            self.fail(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        subprocess.run([*self.base, "new-session", "-d", "-s", self.session, "-x", "160",
                        "-y", "40", "-c", str(cwd), "--", *argv],
                       env=env, check=True, timeout=10)

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", self.session],
                              capture_output=True, timeout=10, check=False).returncode == 0

    def stop(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10,
                       check=False)

    def keys(self, *keys: str) -> None:
        """tmux key names (``Space``, ``Enter``, ``Escape``, ``Down``) or plain characters."""
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def command(self, text: str) -> None:
        """A ``:`` command, typed in normal mode (Escape apart, or ``Esc :`` reads as ``Alt-:``)."""
        self.keys("Escape")
        time.sleep(0.1)
        self.type(f":{text}")
        self.keys("Enter")

    def screen(self, escapes: bool = False) -> str:
        """What the terminal shows ("" once helix has exited)."""
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []),
                         "-t", self.session, check=False)

    def fail(self, what: str) -> None:
        screen = "\n".join(line.rstrip() for line in self.screen().splitlines() if line.strip())
        screen = screen or "(helix has exited)"
        pytest.fail(f"{what}\n--- screen\n{screen}\n--- hx log (tail)\n{self.log.tail()}")

    def wait(self, check: Callable[[], T | None], what: str, timeout: float = WAIT,
             running: bool = True) -> T:
        """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + 1.0
        while True:
            value = check()
            if value:
                return value
            now = time.monotonic()
            if now > deadline:
                self.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            if now > next_check:  # a crashed or killed editor fails at once
                next_check = now + 1.0
                if running and not self.alive():
                    self.fail(f"helix exited while waiting for {what}")
            time.sleep(POLL)

    def wait_screen(self, text: str) -> str:
        def shown() -> str | None:
            screen = self.screen()
            return screen if text in screen else None
        return self.wait(shown, f"{text!r} on screen")

    def wait_request(self, direction: str, method: str, count: int = 1,
                     where: Callable[[dict[str, Any]], bool] = lambda m: True,
                     timeout: float = WAIT) -> dict[str, Any]:
        """The ``count``-th ``method`` message going ``direction`` that matches ``where``."""
        def found() -> dict[str, Any] | None:
            matching = [m for m in self.log.requests(direction, method) if where(m)]
            return matching[count - 1] if len(matching) >= count else None
        return self.wait(found, f"{direction} {method} #{count}", timeout)

    def wait_reply(self, direction: str, request: dict[str, Any],
                   timeout: float = WAIT) -> dict[str, Any]:
        return self.wait(lambda: self.log.reply(direction, request),
                         f"the reply to {request.get('method')} {request.get('id')}", timeout)

    def code_actions(self, uri: str) -> list[str]:
        """``space a``: the titles oropendola offered, once Helix shows its menu."""
        def asked(m: dict[str, Any]) -> bool:
            return bool(m["params"]["textDocument"]["uri"] == uri)
        before = len([m for m in self.log.requests("sent", "textDocument/codeAction") if asked(m)])
        self.keys("Space", "a")
        request = self.wait_request("sent", "textDocument/codeAction", before + 1, asked)
        titles = [a["title"] for a in self.wait_reply("received", request).get("result") or []]
        assert titles, f"oropendola offered no code actions on {uri}"
        self.wait(lambda: any(t[:30] in self.screen() for t in titles), "the code-action menu")
        return titles

    def choose(self, title: str, take: bool = True) -> None:
        """Move the open menu's selection to the item containing ``title`` (and take it).

        Menus do not filter as you type and other servers (ruff, …) add their own items, so
        the selected row is found by its reverse video in ``capture-pane -e``, pressing Down
        (the menu scrolls and wraps around) until it is ``title``."""
        screen = self.screen(escapes=True)
        give_up = time.monotonic() + WAIT
        for _ in range(60):
            if time.monotonic() > give_up:
                break
            if _menu_state(screen, title) == "selected":
                if take:
                    self.keys("Enter")
                return
            self.keys("Down")
            deadline = time.monotonic() + 1.0
            previous, screen = screen, self.screen(escapes=True)
            while screen == previous and time.monotonic() < deadline:
                time.sleep(POLL / 2)
                screen = self.screen(escapes=True)
        self.fail(f"could not select menu item {title!r}")


def _menu_state(screen: str, title: str) -> str | None:
    """``selected`` / ``shown`` for the menu row showing ``title``; None when there is none."""
    for line in screen.splitlines():
        at = line.find(title)
        if at < 0:
            continue
        return "selected" if _reversed_at(line[:at]) else "shown"
    return None


def _reversed_at(prefix: str) -> bool:
    """Whether the SGR sequences in ``prefix`` leave reverse video on."""
    reverse = False
    for match in _SGR.finditer(prefix):
        codes = [int(c) if c else 0 for c in match[1].split(";")]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in (38, 48, 58):  # colour: 5;n or 2;r;g;b
                i += 3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5
                continue
            if code == 0 or code == 27:
                reverse = False
            elif code == 7:
                reverse = True
            i += 1
    return reverse


def _install_config(editor_setup: EditorSetup) -> None:
    """The shipped files, as shipped: symlinked into $XDG_CONFIG_HOME/helix/."""
    target = Path(editor_setup.env["XDG_CONFIG_HOME"]) / "helix"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("languages.toml", "config.toml"):
        (target / name).symlink_to(HELIX_CONFIG / name)


def test_helix_end_to_end(editor_setup: EditorSetup, tmp_path: Path) -> None:
    hx = editor_binary("helix", "hx")
    tmux = editor_binary("tmux", "tmux")
    timeout = shutil.which("timeout")
    assert timeout, "coreutils timeout is needed to bound the editor"
    _install_config(editor_setup)
    workspace = editor_setup.workspace
    uri = {name: (workspace / name).as_uri()
           for name in ("app.py", "notes.oropendola.md", "tasks.sh")}
    log = HelixLog(tmp_path / "hx.log")
    helix = Helix(tmux, tmp_path / "tmux.sock", log)
    started = time.monotonic()

    def step(name: str) -> None:
        print(f"[helix {time.monotonic() - started:5.2f} s] {name}")

    try:
        helix.start([timeout, str(EDITOR_TIMEOUT), hx, "-v", "--log", str(log.path), "app.py"],
                    workspace, editor_setup.env)

        # -- start: the shipped [language-server.oropendola] ---------------------------------
        step("start")
        initialize = helix.wait_request("sent", "initialize", timeout=START_WAIT)
        params = initialize["params"]
        assert params["clientInfo"]["name"] == "helix"
        # `config` arrives as initializationOptions and answers workspace/configuration
        assert params["initializationOptions"] == {"oropendola": {"analyzeOnSave": True}}
        assert params["rootUri"] == workspace.as_uri()
        reply = helix.wait_reply("received", initialize, timeout=START_WAIT)
        assert "codeActionProvider" in reply["result"]["capabilities"]
        recorded = json.loads(RECORDED.read_text())
        if params["clientInfo"] == recorded["clientInfo"]:
            assert params["capabilities"] == recorded["capabilities"], (
                "Helix's initialize differs from tests/capabilities/helix_v25.01.1.json")
        configuration = helix.wait_request("received", "workspace/configuration",
                                           timeout=START_WAIT)
        assert configuration["params"]["items"] == [{"section": "oropendola"}]
        assert helix.wait_reply("sent", configuration)["result"] == [{"analyzeOnSave": True}]
        helix.wait_request("sent", "textDocument/didOpen",
                           where=lambda m: m["params"]["textDocument"]["uri"] == uri["app.py"])

        # -- app.py: analysis on :write, then the code-action menu ---------------------------
        step("app.py")
        helix.command("write")
        analysis = helix.wait_request(
            "received", "textDocument/publishDiagnostics",
            where=lambda m: m["params"]["uri"] == uri["app.py"]
            and any(d.get("source") == "oropendola" for d in m["params"]["diagnostics"]),
            timeout=START_WAIT)  # the first backend call waits for the sign-in check
        codes = {d["code"] for d in analysis["params"]["diagnostics"]}
        assert "unused-import" in codes, analysis
        helix.keys("%")  # select the whole file
        offered = helix.code_actions(uri["app.py"])
        for title in ("Oropendola: Explain", "Oropendola: Fix", "Oropendola: Document"):
            assert title in offered, offered
        helix.choose("Oropendola: Explain", take=False)  # on screen, in Helix's menu
        helix.keys("Escape")

        # -- notes.oropendola.md: "Send to Oropendola" streams the answer in -------------------
        step("notes.oropendola.md")
        helix.command("open notes.oropendola.md")
        helix.wait_request(
            "sent", "textDocument/didOpen",
            where=lambda m: m["params"]["textDocument"]["uri"] == uri["notes.oropendola.md"])
        helix.keys("g", "e")  # the question, in the last "## You" section
        assert "Send to Oropendola" in helix.code_actions(uri["notes.oropendola.md"])
        helix.choose("Send to Oropendola")
        send = helix.wait_request(
            "sent", "workspace/executeCommand",
            where=lambda m: m["params"]["command"] == "oropendola.sendChatDocument")
        answer = helix.wait_reply("received", send)
        assert "error" not in answer, answer
        content = answer["result"]["content"]
        edits = [m for m in log.requests("received", "workspace/applyEdit")
                 if any(c["textDocument"]["uri"] == uri["notes.oropendola.md"]
                        for c in m["params"]["edit"].get("documentChanges", []))]
        assert edits, "no workspace/applyEdit on the chat document"
        for edit in edits:
            assert helix.wait_reply("sent", edit)["result"]["applied"] is True
        helix.wait_screen("## Oropendola")
        helix.command("write")
        notes = workspace / "notes.oropendola.md"

        def answered() -> str | None:
            text = notes.read_text()
            return text if "## Oropendola" in text else None
        saved = helix.wait(answered, "the answer saved in notes.oropendola.md")
        assert content.strip().splitlines()[0] in saved
        assert content.strip().splitlines()[-1] in saved
        assert saved.index("## You") < saved.index("## Oropendola") < saved.rindex("## You")

        # -- tasks.sh: the command gate asks, Helix cannot, "Confirm: run …" runs it ------------
        step("tasks.sh")
        helix.command("open tasks.sh")
        helix.wait_request("sent", "textDocument/didOpen",
                           where=lambda m: m["params"]["textDocument"]["uri"] == uri["tasks.sh"])
        helix.command("3")
        helix.keys("x")  # select line 3, `touch done.txt`
        run_title = "Oropendola: run `touch done.txt` in the shell"
        assert run_title in helix.code_actions(uri["tasks.sh"])
        helix.choose(run_title)
        run = helix.wait_request(
            "sent", "workspace/executeCommand",
            where=lambda m: m["params"]["command"] == "oropendola.runShellCommand")
        ask = helix.wait_request("received", "window/showMessageRequest")
        refused = helix.wait_reply("sent", ask)
        assert refused.get("error", {}).get("code") == -32601, refused
        parked = helix.wait_reply("received", run).get("result") or {}
        assert parked.get("decision") == "confirm" and parked.get("pending"), parked
        assert not (workspace / "done.txt").exists()
        helix.wait_request(
            "received", "textDocument/publishDiagnostics",
            where=lambda m: m["params"]["uri"] == uri["tasks.sh"]
            and any(d.get("code") == "confirm-command" for d in m["params"]["diagnostics"]))
        helix.wait_screen("(confirm-command)")  # Helix's inline diagnostic
        offered = helix.code_actions(uri["tasks.sh"])
        assert any(t.startswith("Confirm: run `touch done.txt`") for t in offered), offered
        helix.choose("Confirm: run `touch done.txt`")
        confirm = helix.wait_request(
            "sent", "workspace/executeCommand",
            where=lambda m: m["params"]["command"] == "oropendola.confirmShellCommand")
        ran = helix.wait_reply("received", confirm)
        assert ran.get("result", {}).get("exitCode") == 0, ran
        assert (workspace / "done.txt").exists()

        # -- search: index with :lsp-workspace-command, then the symbol picker (space S) --------
        step("search")
        helix.command("lsp-workspace-command oropendola.indexWorkspace")
        index = helix.wait_request(
            "sent", "workspace/executeCommand",
            where=lambda m: m["params"]["command"] == "oropendola.indexWorkspace")
        indexed = helix.wait_reply("received", index)
        assert indexed.get("result", {}).get("filesSent", 0) >= 3, indexed
        helix.keys("Escape")
        helix.keys("Space", "S")
        helix.wait(lambda: all(w in helix.screen() for w in ("kind", "name", "path")),
                   "the workspace-symbol picker")
        helix.type("total")
        search = helix.wait_request("sent", "workspace/symbol",
                                    where=lambda m: m["params"]["query"] == "total")
        hits = helix.wait_reply("received", search)["result"]
        assert any(h["location"]["uri"] == uri["app.py"] for h in hits), hits
        helix.wait_screen("def total(values):")

        # -- $/progress (chat streaming, the command's output, indexing) -----------------------
        step("progress")
        kinds = {m["params"]["value"]["kind"] for m in log.requests("received", "$/progress")}
        assert {"begin", "report", "end"} <= kinds, kinds

        # -- quit cleanly ----------------------------------------------------------------------
        step("quit")
        helix.command("quit-all!")
        helix.wait(lambda: not helix.alive(), "helix to quit", running=False)
        assert log.requests("sent", "shutdown") and log.requests("sent", "exit")
    finally:
        helix.stop()
    print(f"helix flow took {time.monotonic() - started:.1f} s")
