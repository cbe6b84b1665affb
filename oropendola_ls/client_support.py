"""What the editor declared in ``initialize``, read once, and the path each feature takes there.

Every standard-LSP fallback (DESIGN.md, *Standard-LSP paths*) is decided here from the client's
declared capabilities, so features ask one object (``server.client_support``) instead of
walking capability trees, and the choices can be logged, reported by ``oropendola/debugInfo``
and checked against the editors' recorded capabilities in tests.

One choice is deliberately not taken from the declaration: a confirmation dialog
(``window/showMessageRequest``) is tried with every client, because Eglot answers it without
declaring ``window.showMessage``; a client that cannot ask replies -32601 (Helix) and the command
is then offered as a "Confirm: run …" code action.
"""

from __future__ import annotations

from typing import Any

import attrs
from lsprotocol import types


def _get(root: Any, path: str) -> Any:
    value = root
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


@attrs.frozen
class ClientSupport:
    """The client capabilities that change what the server does, as plain booleans."""

    client: str = "unknown client"
    work_done_progress: bool = False
    show_message_request: bool = False
    show_document: bool = False
    apply_edit: bool = False
    document_changes: bool = False
    create_files: bool = False
    change_annotations: bool = False
    resolve_edit: bool = False
    configuration: bool = False
    configuration_registration: bool = False
    watched_files_registration: bool = False

    @classmethod
    def of(cls, capabilities: types.ClientCapabilities | None,
           client_info: types.ClientInfo | None = None) -> ClientSupport:
        def has(path: str) -> bool:
            return bool(_get(capabilities, path))

        properties = _get(capabilities, "text_document.code_action.resolve_support.properties")
        operations = _get(capabilities, "workspace.workspace_edit.resource_operations") or ()
        name = " ".join(filter(None, (client_info.name, client_info.version))) \
            if client_info else "unknown client"
        return cls(
            client=name,
            work_done_progress=has("window.work_done_progress"),
            show_message_request=has("window.show_message"),
            show_document=has("window.show_document.support"),
            apply_edit=has("workspace.apply_edit"),
            document_changes=has("workspace.workspace_edit.document_changes"),
            # A client that declares "create" handles `documentChanges` (resource operations
            # only exist there), whether or not it declares them: Neovim does not.
            create_files=types.ResourceOperationKind.Create in operations,
            change_annotations=has("workspace.workspace_edit.change_annotation_support"),
            resolve_edit="edit" in (properties or ())
                         and has("text_document.code_action.data_support"),
            configuration=has("workspace.configuration"),
            configuration_registration=has(
                "workspace.did_change_configuration.dynamic_registration"),
            watched_files_registration=has(
                "workspace.did_change_watched_files.dynamic_registration"),
        )

    def paths(self) -> dict[str, str]:
        """For each feature with a fallback, the way it works with this client."""
        if self.resolve_edit:
            code_action_edits = "edit resolved in codeAction/resolve"
        elif self.apply_edit:
            code_action_edits = "command oropendola.codeAction, then workspace/applyEdit"
        else:
            code_action_edits = "answer shown to copy into place"
        return {
            "progress": "$/progress" if self.work_done_progress
                        else "$/progress only on a workDoneToken the client sends",
            "confirmation": "window/showMessageRequest" if self.show_message_request
                            else "window/showMessageRequest tried; on -32601 a "
                                 "\"Confirm: run …\" code action",
            "codeActionEdits": code_action_edits,
            "edits": "versioned documentChanges" if self.document_changes
                     else "changes (unversioned; insertion point recomputed from the text)",
            "generateTests": "new file with CreateFile" if self.create_files
                             else "answer shown with the file name to save it as",
            "editConfirmation": "change annotation needing confirmation" if self.change_annotations
                                else "none (the editor applies the edit)",
            "chatDocuments": "streamed with workspace/applyEdit" if self.apply_edit
                             else "not available (use oropendola/chat)",
            "openAnswers": "window/showDocument" if self.show_document
                           else "chat document, else window/showMessage",
            "settings": "workspace/configuration" if self.configuration
                        else "initializationOptions and workspace/didChangeConfiguration",
            "fileChanges": "watched files (registered dynamically) and saves"
                           if self.watched_files_registration else "saves only",
        }
