"""Neovim's own LSP client, with the shipped ``client-configs/neovim`` set up as its README says.

``neovim_flow.lua`` runs headless in the sample workspace: ``vim.lsp.enable('oropendola')``
(``lsp/oropendola.lua`` from the runtimepath, the shipped 0.11 path) and
``require('oropendola').setup()``; then analysis diagnostics after ``:write``, the "Document"
code action editing the buffer through ``vim.lsp.buf.code_action``, the shell command on
``tasks.sh`` confirmed through ``vim.ui.select``, ``$/progress`` as ``LspProgress``, and the
helper commands (status, index, search, chat).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.editors.conftest import CLIENT_CONFIGS, EditorSetup, editor_binary

NVIM_CONFIG = CLIENT_CONFIGS / "neovim"
FLOW = Path(__file__).with_name("neovim_flow.lua")
LSPCONFIG_CHECK = Path(__file__).with_name("neovim_lspconfig_check.lua")


def test_neovim_end_to_end(editor_setup: EditorSetup) -> None:
    nvim = editor_binary("neovim", "nvim")
    editor_setup.env["OROPENDOLA_NVIM_CONFIG"] = str(NVIM_CONFIG)
    stdout = editor_setup.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {FLOW}"],
        timeout=50,
    )
    print(stdout)
    assert re.search(r"\] PASS total \d+ ms", stdout), stdout
    # started from the shipped lsp/oropendola.lua, in the workspace
    assert f"config {NVIM_CONFIG / 'lsp' / 'oropendola.lua'}" in stdout
    assert re.search(r"notify\[\d\] Oropendola: signed in as \S+ at http", stdout), stdout
    # analysis after :write: the sample's unused imports and bare except
    assert re.search(r"diagnostic 1:\d+ \[oropendola [\w-]+\] .*\bos\b", stdout), stdout
    assert re.search(r"diagnostic 15:\d+ \[oropendola ", stdout), stdout
    # the code action edited the buffer, and the file on disk is untouched until :write
    assert 'code action "Oropendola: Document"' in stdout
    assert "buffer edited by \"Oropendola: Document\"" in stdout
    assert (editor_setup.workspace / "app.py").read_text() == (
        Path(__file__).with_name("sample") / "app.py").read_text()
    # the shell command ran after the confirmation answered through vim.ui.select
    assert re.search(r"vim\.ui\.select prompt=\"Oropendola: Run `touch done\.txt`\?.*"
                     r"items=Execute\|Cancel.* -> Execute", stdout), stdout
    assert (editor_setup.workspace / "done.txt").exists()
    # $/progress arrived as LspProgress begin ... end
    kinds = re.search(r"progress kinds seen: begin=(\d+) report=(\d+) end=(\d+)", stdout)
    assert kinds and int(kinds[1]) >= 1 and int(kinds[3]) >= 1, stdout
    # helper commands: index, workspace search, chat
    assert re.search(r"Oropendola: indexed [1-9]\d* files", stdout), stdout
    assert re.search(r"search hit app\.py:\d+ ", stdout), stdout
    assert re.search(r"chat answer \(\d+ lines, conversation \S+\)", stdout), stdout


def test_neovim_lspconfig_variant_matches(tmp_path: Path) -> None:
    """No server needed: a static check, so no signed-in set-up (saves the login)."""
    nvim = editor_binary("neovim", "nvim")
    env = {**os.environ, "OROPENDOLA_NVIM_CONFIG": str(NVIM_CONFIG), "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {LSPCONFIG_CHECK}"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=20, check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0 and "LSPCONFIG SAME" in done.stdout, (done.stdout, done.stderr)
