"""The path each feature takes with each editor, from the editors' recorded ``initialize``.

These are the choices the README's editor table states; a change in the capability reading
(or a new recording) that changes them fails here first.
"""

from __future__ import annotations

import pytest
from lsprotocol import types

from oropendola_ls.client_support import ClientSupport
from tests.conftest import PRESETS, recorded_client

EXPECTED = {
    "visual-studio-code": {
        "codeActionEdits": "edit resolved in codeAction/resolve",
        "edits": "versioned documentChanges",
        "generateTests": "new file with CreateFile",
        "editConfirmation": "change annotation needing confirmation",
        "openAnswers": "window/showDocument",
        "confirmation": "window/showMessageRequest",
    },
    "neovim": {
        "codeActionEdits": "edit resolved in codeAction/resolve",
        "edits": "changes (unversioned; insertion point recomputed from the text)",
        "generateTests": "new file with CreateFile",
        "openAnswers": "window/showDocument",
        "confirmation": "window/showMessageRequest",
        "fileChanges": "saves only",
    },
    "emacs": {  # Emacs 30.1, eglot 1.17.30
        "codeActionEdits": "edit resolved in codeAction/resolve",
        "edits": "versioned documentChanges",
        "generateTests": "answer shown with the file name to save it as",
        "openAnswers": "window/showDocument",
        "confirmation": "window/showMessageRequest tried; on -32601 a "
                        "\"Confirm: run …\" code action",
    },
    "emacs@29.1": {
        "codeActionEdits": "command oropendola.codeAction, then workspace/applyEdit",
        "openAnswers": "chat document, else window/showMessage",
    },
    "helix": {
        "codeActionEdits": "edit resolved in codeAction/resolve",
        "edits": "versioned documentChanges",
        "generateTests": "new file with CreateFile",
        "openAnswers": "chat document, else window/showMessage",
        "confirmation": "window/showMessageRequest tried; on -32601 a "
                        "\"Confirm: run …\" code action",
    },
}


@pytest.mark.parametrize("preset", [*PRESETS, "emacs@29.1"])
def test_each_editor_gets_the_documented_paths(preset: str) -> None:
    capabilities, info = recorded_client(preset)
    support = ClientSupport.of(capabilities, info)
    paths = support.paths()
    assert {name: paths[name] for name in EXPECTED[preset]} == EXPECTED[preset]
    # every editor we ship a configuration for shows server progress and accepts edits
    assert paths["progress"] == "$/progress"
    assert paths["chatDocuments"] == "streamed with workspace/applyEdit"
    assert info is not None and support.client.startswith(info.name)


def test_a_client_that_declares_nothing_gets_the_plainest_paths() -> None:
    support = ClientSupport.of(types.ClientCapabilities(), None)
    assert support.client == "unknown client"
    assert support.paths() == {
        "progress": "$/progress only on a workDoneToken the client sends",
        "confirmation": "window/showMessageRequest tried; on -32601 a "
                        "\"Confirm: run …\" code action",
        "codeActionEdits": "answer shown to copy into place",
        "edits": "changes (unversioned; insertion point recomputed from the text)",
        "generateTests": "answer shown with the file name to save it as",
        "editConfirmation": "none (the editor applies the edit)",
        "chatDocuments": "not available (use oropendola/chat)",
        "openAnswers": "chat document, else window/showMessage",
        "settings": "initializationOptions and workspace/didChangeConfiguration",
        "fileChanges": "saves only",
    }


def test_resolving_edits_needs_data_support_too() -> None:
    declared = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]))))
    assert not ClientSupport.of(declared).resolve_edit
    declared.text_document.code_action.data_support = True  # type: ignore[union-attr]
    assert ClientSupport.of(declared).resolve_edit
