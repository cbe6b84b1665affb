"""Emacs + Eglot with client-configs/emacs/oropendola.el, end to end, against the reference
backend: analysis diagnostics in Flymake after a save, a code action whose edit comes through
``oropendola.codeAction`` + ``workspace/applyEdit``, the shipped chat/status/index/search
helpers, a shell command confirmed through ``window/showMessageRequest`` (answered with
``completing-read``, as vertico/ivy do), and ``$/progress``.

The driver is tests/editors/emacs_flow.el; Emacs loads the package exactly as its README says
(``load-path`` + ``require``), then the flow file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import CLIENT_CONFIGS, SAMPLE, EditorSetup, editor_binary

FLOW = Path(__file__).with_name("emacs_flow.el")
MIN_MAJOR = 30  # what .ci/install-editors installs; Emacs 28's eglot 1.9 has no $/progress


def _emacs() -> str:
    """The Emacs to test (30+: what CI installs and the flow is written against), or skip."""
    emacs = editor_binary("emacs", "emacs")
    first = subprocess.run([emacs, "--version"], capture_output=True, text=True,
                           timeout=30, check=False).stdout.partition("\n")[0]
    found = re.search(r"(\d+)\.(\d+)", first)
    if found is None or int(found.group(1)) < MIN_MAJOR:
        pytest.skip(f"needs Emacs {MIN_MAJOR}+ (Emacs 28's eglot 1.9 has no $/progress), "
                    f"found {first!r}")
    return emacs


def test_emacs_eglot_end_to_end(editor_setup: EditorSetup) -> None:
    emacs = _emacs()
    out = editor_setup.run(
        [emacs, "--batch", "-Q", "-L", str(CLIENT_CONFIGS / "emacs"),
         "--eval", "(require 'oropendola)", "-l", str(FLOW)],
        timeout=45,
    )
    print(out)
    assert out.rstrip().endswith("PASS"), out
    # The evidence, beyond the flow's own checks:
    assert re.search(r"diagnostic line \d+: oropendola \[", out), out
    assert "buffer changed by Document" in out
    assert "window/showMessageRequest" in out and '-> "Execute"' in out
    assert (editor_setup.workspace / "done.txt").exists()
    app = (editor_setup.workspace / "app.py").read_text()
    assert app != (SAMPLE / "app.py").read_text()
    assert "def total(values):" in app
    kinds = re.search(r"\$/progress kinds seen: (\S+)", out)
    assert kinds is not None and {"begin", "report", "end"} <= set(kinds.group(1).split(","))
