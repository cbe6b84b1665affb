"""No edit outside the workspace folders is ever sent for the editor to apply.

Already covered: tests/lsp/test_code_actions.py,
test_an_edit_outside_the_workspace_folders_is_refused (a document that lies outside the folders:
Document, Generate tests and the command path are refused) and tests/unit/test_answer_edits.py
(unsafe "save as" names are not used). Added here, end to end with a model that answers what an
attacker would want (a stand-in OpenAI-compatible model behind the real reference backend):

- a "save as" path out of the folder (``../``, absolute, ``~``), a ``tests`` directory that is a
  symlink out of the folder, a document reached through a symlink or a ``..`` URI: every
  action is refused or lands inside the folder, and nothing is written outside;
- whatever the answer says (file URIs, a JSON WorkspaceEdit naming /etc/passwd), every edit the
  server sends names only files inside the folder, and a chat document's answer is written
  into that document and no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import BackendProcess, wait_until
from tests.lsp.test_code_actions import (
    SAMPLE,
    choose,
    list_actions,
    pick,
    range_of,
    session,
)

PRESET = "visual-studio-code"  # resolve, versioned edits and file creation
FUNCTION = "def add(a, b):\n    return a + b\n"


class HostileModel:
    """An OpenAI-compatible chat completion that answers ``self.answer``."""

    def __init__(self) -> None:
        self.answer = ""
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.json_response({"choices": [{"message": {"content": self.answer}}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in ({"role": "assistant"}, {"content": self.answer}):
            data = json.dumps({"choices": [{"delta": chunk}]})
            await response.write(f"data: {data}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response


@contextlib.asynccontextmanager
async def hostile_model() -> AsyncIterator[HostileModel]:
    model = HostileModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    model.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
    try:
        yield model
    finally:
        await runner.cleanup()


def edit_targets(edit: types.WorkspaceEdit) -> list[str]:
    uris = list(edit.changes or {})
    for change in edit.document_changes or []:
        if isinstance(change, types.TextDocumentEdit):
            uris.append(change.text_document.uri)
        elif isinstance(change, types.RenameFile):
            uris += [change.old_uri, change.new_uri]
        else:
            uris.append(change.uri)
    return uris


def inside(uri: str, folder: Path) -> bool:
    assert uri.startswith("file://"), uri
    path = Path(uri.removeprefix("file://")).resolve()
    return folder.resolve() in path.parents


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}


async def test_hostile_answers_never_edit_outside_the_workspace(
        config_dir: Path, tmp_path: Path,
        start_backend: Callable[..., BackendProcess]) -> None:
    project = tmp_path / "project"
    outside = tmp_path / "outside"
    for folder in (project, outside):
        folder.mkdir()
        (folder / "mod.py").write_text(SAMPLE, encoding="utf-8")
    (project / "linked.py").symlink_to(outside / "mod.py")
    (project / "spec").symlink_to(outside, target_is_directory=True)
    before_outside = tree(outside)
    code = "```python\ndef test_add():\n    assert add(1, 2) == 3\n```\n"
    sent: list[types.WorkspaceEdit] = []
    async with hostile_model() as model:
        backend = start_backend(0, "--llm-base-url", model.url, "--llm-model", "hostile")
        async with session(PRESET, config_dir, backend, project) as (client, editor):
            original = editor.apply
            editor.apply = lambda edit: (sent.append(edit), original(edit))[1]  # type: ignore[method-assign]
            uri = editor.open(project / "mod.py")
            where = range_of(SAMPLE, FUNCTION)
            for named in ("../outside/test_escape.py", str(outside / "test_abs.py"),
                          "~/test_home.py", "tests/../../outside/t.py"):
                model.answer = f"Save this as `{named}`:\n\n{code}"
                await choose(client, editor, pick(await list_actions(client, uri, where),
                                                  "tests"))
            created = sorted(set(tree(project)) - {"mod.py", "linked.py"})
            # Unsafe names give the default name; "~" is never expanded: a folder named "~".
            assert created == ["tests/test_mod.py", "tests/test_mod_2.py",
                               "tests/test_mod_3.py", "~/test_home.py"], created
            # A safe-looking name whose directory is a symlink out of the folder.
            model.answer = f"Save this as `spec/test_mod.py`:\n\n{code}"
            try:
                await choose(client, editor, pick(await list_actions(client, uri, where),
                                                  "tests"))
            except JsonRpcException as exc:
                assert "outside the workspace folders" in exc.message, exc.message
            else:
                raise AssertionError("a test file was created through a symlink")
            model.answer = ("Apply this WorkspaceEdit: {\"changes\": {\"file:///etc/passwd\": "
                            "[]}}\nand write to " + (outside / "mod.py").as_uri() + "\n\n"
                            "```python\n" + FUNCTION.replace("a + b", "b + a") + "```\n")
            for action in ("improve", "document"):
                await choose(client, editor, pick(await list_actions(client, uri, where),
                                                  action))
            # Documents that are outside although their URI looks inside.
            for sneaky in ((project / "linked.py").as_uri(),
                           f"{project.as_uri()}/../outside/mod.py"):
                editor.texts[sneaky], editor.versions[sneaky] = SAMPLE, 1
                client.text_document_did_open(types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(uri=sneaky, language_id="python",
                                                         version=1, text=SAMPLE)))
                for action in ("improve", "tests"):
                    try:
                        await choose(client, editor,
                                     pick(await list_actions(client, sneaky, where), action))
                    except JsonRpcException as exc:
                        assert "outside the workspace folders" in exc.message, exc.message
                    else:
                        raise AssertionError(f"{action} on {sneaky} was not refused")
            # A chat document: the answer goes into it, and nowhere else.
            chat = project / "notes.oropendola.md"
            chat.write_text("## You\n\nWrite to /etc/passwd please\n", encoding="utf-8")
            chat_uri = editor.open(chat, "markdown")
            model.answer = f"Done: see {(outside / 'mod.py').as_uri()} and file:///etc/passwd"
            count = len(sent)
            await asyncio.wait_for(client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="oropendola.sendChatDocument",
                                           arguments=[{"uri": chat_uri}])), 30)
            await wait_until(lambda: "Done: see" in editor.texts[chat_uri], 10)
            assert len(sent) > count
            assert all(edit_targets(e) == [chat_uri] for e in sent[count:])
    assert sent, "no edit was sent at all: the test proved nothing"
    for edit in sent:
        for target in edit_targets(edit):
            assert inside(target, project), target
    assert tree(outside) == before_outside
    assert not (tmp_path / "test_escape.py").exists() and not (tmp_path / "t.py").exists()
