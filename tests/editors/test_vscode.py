"""VS Code: the shipped extension (``client-configs/vscode/extension``) and generic-client settings.

VS Code itself cannot run here (no VS Code build on any reachable registry), and
``vscode-languageclient`` needs VS Code's ``vscode`` module, so ``vscode_flow.js`` drives the
server through the layer under it, ``vscode-languageserver-protocol`` from the extension's own
``node_modules`` (``npm ci``, run by ``.ci/install-editors``), with VS Code's recorded
``initialize`` capabilities (shipped in pytest-lsp) and the extension's behaviour: the server
command from ``package.json``'s ``oropendola.serverPath``/``serverArgs`` defaults, the user's
``oropendola.*`` settings (the shipped ``settings.json``) as initializationOptions, in
``workspace/configuration`` and in ``didChangeConfiguration``, progress on the chat's
``workDoneToken``, code actions resolved with ``codeAction/resolve``, and the confirmation dialog
answered "Execute".
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import attrs
import pytest

from oropendola_ls.settings import Settings
from tests.editors.conftest import CLIENT_CONFIGS, EditorSetup, editor_binary

VSCODE = CLIENT_CONFIGS / "vscode"
EXTENSION = VSCODE / "extension"
FLOW = Path(__file__).with_name("vscode_flow.js")
SAMPLE = Path(__file__).with_name("sample")
CAPABILITIES = "visual_studio_code_v1.65.2.json"


def _package() -> dict[str, Any]:
    package: dict[str, Any] = json.loads((EXTENSION / "package.json").read_text())
    return package


def _node() -> str:
    node = editor_binary("vscode", "node")
    if not (EXTENSION / "node_modules" / "vscode-languageserver-protocol").is_dir():
        pytest.skip(f"{EXTENSION / 'node_modules'} is missing: run .ci/install-editors "
                    "(npm ci in client-configs/vscode/extension)")
    return node


def _flow(editor_setup: EditorSetup, mode: str) -> dict[str, Any]:
    node = _node()
    capabilities = importlib.resources.files("pytest_lsp") / "clients" / CAPABILITIES
    config = editor_setup.home / f"vscode-flow-{mode}.json"
    config.write_text(json.dumps({
        "extensionDir": str(EXTENSION),
        "capabilities": str(capabilities),
        "settings": json.loads((VSCODE / "settings.json").read_text()),
        "workspace": str(editor_setup.workspace),
        "mode": mode,
    }))
    stdout = editor_setup.run([node, str(FLOW), str(config)], timeout=50)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    print(f"vscode flow ({mode}): {result['ms']} ms, timeline {result['timeline']}")
    return result


def _analysis_codes(result: dict[str, Any]) -> set[tuple[int, str]]:
    return {(d["line"], d["message"].split()[0]) for d in result["appDiagnostics"]}


def test_vscode_extension_end_to_end(editor_setup: EditorSetup) -> None:
    result = _flow(editor_setup, "extension")
    # started as the extension starts it, with the user's settings only (no serverUrl: the
    # environment's OROPENDOLA_SERVER_URL names the backend)
    assert result["command"] == ["oropendola-ls"]
    assert result["initializationOptions"] == {"analyzeOnSave": True}
    assert result["configurationRequests"] >= 1 and result["didChangeConfiguration"] >= 1
    assert result["codeActionResolve"] is True
    for command in ("oropendola.signIn", "oropendola.reconnect", "oropendola.indexWorkspace"):
        # contributed by package.json, run by the server (vscode-languageclient registers them)
        assert command in result["executeCommands"]
    # status bar feed
    states = [s["state"] for s in result["connectionStatus"]]
    assert "connected" in states, states
    assert all({"state", "previousState", "attempt", "maxAttempts"} <= set(s)
               for s in result["connectionStatus"])
    # chat: streamed on the request's workDoneToken, then the whole answer
    chat = result["chat"]
    assert chat["content"].strip() and chat["conversationId"]
    kinds = [v["kind"] for v in result["progress"][chat["token"]]]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds, kinds
    streamed = "".join(v.get("message") or "" for v in result["progress"][chat["token"]])
    assert streamed.strip()
    # code actions: listed without edits (resolved on choice), "Document" resolved to a
    # versioned edit that applies to the open document
    titles = [a["title"] for a in result["codeActions"]]
    assert "Oropendola: Document" in titles, titles
    assert not any(a["hasEdit"] for a in result["codeActions"]), result["codeActions"]
    assert next(a for a in result["codeActions"] if a["title"] == "Oropendola: Document")["hasData"]
    changes = result["resolvedEdit"]["documentChanges"]
    app_uri = (editor_setup.workspace / "app.py").as_uri()
    assert [c["textDocument"] for c in changes] == [{"uri": app_uri, "version": 1}]
    edit = result["documentEdit"]
    assert edit["before"] == (SAMPLE / "app.py").read_text()
    assert edit["after"] != edit["before"] and edit["version"] == 2
    assert "def total(values):" in edit["after"] and "def load(path):" in edit["after"]
    assert (editor_setup.workspace / "app.py").read_text() == edit["after"]  # saved
    # analyzeOnSave (from the shipped settings.json): the sample's findings after the save
    messages = " ".join(d["message"] for d in result["appDiagnostics"])
    assert "os" in messages and "sys" in messages and "except" in messages, result["appDiagnostics"]
    # the shell action: the server asked with a dialog, "Execute" ran it
    asked = result["showMessageRequests"]
    assert len(asked) == 1 and "touch done.txt" in asked[0]["message"], asked
    assert {"Execute", "Cancel"} <= set(asked[0]["actions"]) and asked[0]["answered"] == "Execute"
    assert result["shellResult"]["exitCode"] == 0, result["shellResult"]
    assert result["doneTxt"] and (editor_setup.workspace / "done.txt").exists()
    assert result["exitCode"] == 0


def test_vscode_generic_client_settings(editor_setup: EditorSetup) -> None:
    """The shipped settings.json for the Generic LSP Client (v2) (``zsol.vscode-glspc``)."""
    result = _flow(editor_setup, "generic")
    assert result["command"] == ["oropendola-ls"]
    assert result["initializationOptions"] == {"analyzeOnSave": True}
    messages = " ".join(d["message"] for d in result["appDiagnostics"])
    assert "os" in messages and "sys" in messages and "except" in messages, result["appDiagnostics"]
    assert result["exitCode"] == 0


def test_vscode_settings_match_the_server() -> None:
    """package.json contributes every server setting with the server's name and default."""
    properties = _package()["contributes"]["configuration"]["properties"]
    for field in attrs.fields(Settings):
        name = f"oropendola.{field.metadata['wire']}"
        assert name in properties, f"{name} is not contributed"
        default: Any = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        shipped = properties[name]["default"]
        # read as the server reads it (URLs normalised, "" meaning unset for the API key pair)
        assert field.metadata["check"](shipped) == default, (name, shipped, default)
    assert properties["oropendola.serverPath"]["default"] == "oropendola-ls"
    assert properties["oropendola.serverArgs"]["default"] == []
    settings = json.loads((VSCODE / "settings.json").read_text())
    assert settings["glspc.server.command"] == "oropendola-ls"
    assert not any("serverUrl" in key for key in settings)
    assert "serverUrl" not in settings["glspc.server.initializationOptions"]


# Loads extension.js with a stand-in `vscode` module (every name resolves to a callable stub):
# the file parses, its requires resolve from the extension's node_modules, and the names it takes
# from vscode-languageclient/node exist.
LOAD_CHECK = r"""
const Module = require('module');
const stub = () => new Proxy(function () {}, {
  get: (t, k) => (k === '__esModule' ? true : k === 'then' ? undefined : (t[k] = t[k] || stub())),
  apply: () => stub(), construct: () => stub(),
});
const vscode = stub();
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'vscode' ? 'vscode' : resolve.call(this, request, ...rest);
};
require.cache.vscode = { id: 'vscode', filename: 'vscode', loaded: true, exports: vscode };
const extension = process.argv[1];
const lc = Module.createRequire(extension)('vscode-languageclient/node');
const source = require('fs').readFileSync(extension, 'utf8');
const names = /const \{([^}]*)\} = require\('vscode-languageclient\/node'\)/.exec(source)[1]
  .split(',').map((n) => n.trim()).filter(Boolean);
const missing = names.filter((n) => lc[n] === undefined);
const ext = require(extension);
console.log(JSON.stringify({ exports: Object.keys(ext).sort(), names, missing }));
"""


def test_vscode_extension_loads() -> None:
    node = _node()
    done = subprocess.run([node, "-e", LOAD_CHECK, str(EXTENSION / "extension.js")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded["exports"] == ["activate", "deactivate"]
    assert "LanguageClient" in loaded["names"] and loaded["missing"] == [], loaded
    assert _package()["main"] == "./extension.js"


def test_vscode_extension_packages_as_vsix(tmp_path: Path) -> None:
    """``npm run package`` (vsce, offline) makes a .vsix with the runtime dependencies."""
    _node()
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    out = tmp_path / "oropendola.vsix"
    done = subprocess.run([npm, "run", "package", "--", "--out", str(out)], cwd=EXTENSION,
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    names = set(zipfile.ZipFile(out).namelist())
    for member in ("extension/extension.js", "extension/package.json",
                   "extension/node_modules/vscode-languageclient/package.json",
                   "extension/node_modules/vscode-languageserver-protocol/package.json"):
        assert member in names, member
    assert not any("/@vscode/vsce" in name for name in names)  # dev dependencies stay out
