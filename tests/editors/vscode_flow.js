// Drives oropendola-ls through VS Code's own protocol stack (vscode-languageserver-protocol +
// vscode-jsonrpc, the layer under vscode-languageclient, which cannot load outside VS Code),
// behaving as the shipped extension (client-configs/vscode/extension) inside VS Code would.
//
//   node vscode_flow.js CONFIG.json
//
// CONFIG: {extensionDir, capabilities (VS Code's recorded initialize capabilities), settings
// (the shipped settings.json), workspace, mode: "extension" | "generic"}.
//   extension: the extension's server command (package.json defaults of oropendola.serverPath
//     and serverArgs), initializationOptions / workspace/configuration / didChangeConfiguration
//     answered with the user's oropendola.* settings as extension.js does; then chat with
//     streamed progress, code action + codeAction/resolve ("Document") applied to app.py, save
//     with analysis diagnostics, the tasks.sh shell action confirmed with "Execute".
//   generic: the Generic LSP Client (glspc.server.*) settings: command, arguments and
//     initializationOptions; save app.py and get the analysis diagnostics.
// Prints one line `RESULT <json>` with the evidence; exits non-zero on failure.
'use strict';
const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');
const { pathToFileURL } = require('url');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const requireExt = createRequire(path.join(config.extensionDir, 'package.json'));
const p = requireExt('vscode-languageserver-protocol/node');

const t0 = Date.now();
const log = (...a) => console.error(`[vscode ${String(Date.now() - t0).padStart(5)}ms]`, ...a);
let child;
const fail = (message) => {
  console.log(`FAIL ${message}`);
  if (child && child.exitCode === null) child.kill('SIGKILL');
  process.exit(1);
};
setTimeout(() => fail('timed out after 40 s'), 40000).unref();

const SECTION = 'oropendola';
const pkg = JSON.parse(fs.readFileSync(path.join(config.extensionDir, 'package.json'), 'utf8'));
const properties = pkg.contributes.configuration.properties;
const CLIENT_ONLY = new Set(['serverPath', 'serverArgs']);
const keys = Object.keys(properties).map((n) => n.slice(SECTION.length + 1)).filter((k) => !CLIENT_ONLY.has(k));
// What extension.js's userSettings() returns: only the oropendola.* values the user set.
const userSettings = {};
for (const [name, value] of Object.entries(config.settings)) {
  const key = name.startsWith(`${SECTION}.`) ? name.slice(SECTION.length + 1) : null;
  if (key && keys.includes(key)) userSettings[key] = value;
}
const generic = config.mode === 'generic';
const command = generic ? config.settings['glspc.server.command'] : properties['oropendola.serverPath'].default;
const args = generic ? (config.settings['glspc.server.commandArguments'] || []) : properties['oropendola.serverArgs'].default;
const initializationOptions = generic ? (config.settings['glspc.server.initializationOptions'] || {}) : userSettings;

const ws = config.workspace;
const wsUri = pathToFileURL(ws).href;
const uriOf = (name) => pathToFileURL(path.join(ws, name)).href;

const seen = {
  mode: config.mode, command: [command, ...args], initializationOptions,
  connectionStatus: [], configurationRequests: 0, didChangeConfiguration: 0,
  progress: {}, showMessage: [], showMessageRequests: [], showDocument: [], applyEdit: 0,
  diagnostics: {}, registrations: [], timeline: {},
};
const mark = (what) => { seen.timeline[what] = Date.now() - t0; };

child = cp.spawn(command, args, { cwd: ws, stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
child.on('error', (e) => fail(`could not start ${command}: ${e.message}`));
const conn = p.createProtocolConnection(new p.StreamMessageReader(child.stdout), new p.StreamMessageWriter(child.stdin));

// -- what vscode-languageclient does for server-to-client traffic ---------------------------
const documents = {};  // uri -> {version, text, languageId}
const sendConfiguration = () => {
  if (generic) return;  // glspc sets no synchronize section
  seen.didChangeConfiguration += 1;
  conn.sendNotification(p.DidChangeConfigurationNotification.type, { settings: { [SECTION]: userSettings } });
};
conn.onRequest(p.ConfigurationRequest.type, (params) => {
  seen.configurationRequests += 1;
  // extension.js's middleware answers its section with the user's settings; glspc declares no
  // oropendola.* settings, so VS Code has nothing registered for the section.
  return params.items.map((item) => (item.section === SECTION && !generic ? userSettings : null));
});
conn.onRequest(p.RegistrationRequest.type, (params) => {
  for (const r of params.registrations) {
    seen.registrations.push(r.method);
    if (r.method === p.DidChangeConfigurationNotification.type.method && r.registerOptions && r.registerOptions.section) {
      sendConfiguration();  // SyncConfigurationFeature.register sends the section at once
    }
  }
  return null;
});
conn.onRequest(p.UnregistrationRequest.type, () => null);
conn.onRequest(p.WorkDoneProgressCreateRequest.type, (params) => {
  watchProgress(params.token);
  return null;
});
function watchProgress(token) {
  if (seen.progress[token]) return;
  seen.progress[token] = [];
  conn.onProgress(p.WorkDoneProgress.type, token, (value) => {
    seen.progress[token].push({ kind: value.kind, title: value.title, message: value.message });
  });
}
conn.onNotification('oropendola/connectionStatus', (params) => {
  seen.connectionStatus.push(params);
  log('oropendola/connectionStatus', JSON.stringify(params));
});
conn.onNotification(p.ShowMessageNotification.type, (params) => { seen.showMessage.push(params); log('showMessage', params.message); });
conn.onNotification(p.LogMessageNotification.type, () => {});
conn.onNotification(p.TelemetryEventNotification.type, () => {});
conn.onNotification(p.PublishDiagnosticsNotification.type, (params) => { seen.diagnostics[params.uri] = params.diagnostics; });
conn.onRequest(p.ShowMessageRequest.type, (params) => {
  // VS Code shows a notification with the actions as buttons; the user clicks "Execute".
  const titles = (params.actions || []).map((a) => a.title);
  const pick = (params.actions || []).find((a) => a.title === 'Execute') || null;
  seen.showMessageRequests.push({ message: params.message, actions: titles, answered: pick && pick.title });
  log('showMessageRequest', JSON.stringify(params.message), '->', pick && pick.title);
  return pick;
});
conn.onRequest(p.ShowDocumentRequest.type, (params) => { seen.showDocument.push(params); return { success: true }; });
conn.onRequest(p.ApplyWorkspaceEditRequest.type, (params) => {
  seen.applyEdit += 1;
  try {
    applyWorkspaceEdit(params.edit);
    return { applied: true };
  } catch (e) {
    return { applied: false, failureReason: String(e.message || e) };
  }
});
conn.onRequest(p.WorkspaceFoldersRequest.type, () => [{ uri: wsUri, name: path.basename(ws) }]);
conn.listen();

// -- documents ------------------------------------------------------------------------------
function offsetAt(text, pos) {
  const lines = text.split('\n');
  let offset = 0;
  for (let i = 0; i < pos.line; i++) offset += lines[i].length + 1;
  return offset + Math.min(pos.character, (lines[pos.line] || '').length);
}
function applyTextEdits(text, edits) {
  const sorted = [...edits].sort((a, b) => offsetAt(text, b.range.start) - offsetAt(text, a.range.start));
  for (const e of sorted) text = text.slice(0, offsetAt(text, e.range.start)) + e.newText + text.slice(offsetAt(text, e.range.end));
  return text;
}
// As VS Code applies a WorkspaceEdit to open documents: versions must match (then a didChange).
function applyWorkspaceEdit(edit) {
  const changes = edit.documentChanges || Object.entries(edit.changes || {}).map(
    ([uri, edits]) => ({ textDocument: { uri, version: null }, edits }));
  for (const change of changes) {
    if (change.kind) throw new Error(`resource operation ${change.kind} not expected here`);
    const doc = documents[change.textDocument.uri];
    if (!doc) throw new Error(`edit on a document that is not open: ${change.textDocument.uri}`);
    if (change.textDocument.version !== null && change.textDocument.version !== doc.version) {
      throw new Error(`edit for version ${change.textDocument.version}, document is at ${doc.version}`);
    }
    doc.text = applyTextEdits(doc.text, change.edits);
    doc.version += 1;
    conn.sendNotification(p.DidChangeTextDocumentNotification.type, {
      textDocument: { uri: change.textDocument.uri, version: doc.version },
      contentChanges: [{ text: doc.text }],
    });
  }
}
function open(name, languageId) {
  const uri = uriOf(name);
  documents[uri] = { version: 1, text: fs.readFileSync(path.join(ws, name), 'utf8'), languageId };
  conn.sendNotification(p.DidOpenTextDocumentNotification.type,
    { textDocument: { uri, languageId, version: 1, text: documents[uri].text } });
  return uri;
}
function save(uri) {
  fs.writeFileSync(new URL(uri), documents[uri].text);
  conn.sendNotification(p.DidSaveTextDocumentNotification.type, { textDocument: { uri }, text: documents[uri].text });
}
function rangeOfLines(text, first, last) {  // whole lines first..last (0-based), as a selection
  const lines = text.split('\n');
  return { start: { line: first, character: 0 }, end: { line: last, character: lines[last].length } };
}
const until = async (pred, ms, what) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (pred()) return;
  fail(`${what} (waited ${ms} ms)`);
};
const oropendolaDiagnostics = (uri) => (seen.diagnostics[uri] || []).filter((d) => d.source === 'oropendola');

// -- the flow -------------------------------------------------------------------------------
(async () => {
  const recorded = JSON.parse(fs.readFileSync(config.capabilities, 'utf8'));
  const init = await conn.sendRequest(p.InitializeRequest.type, {
    processId: process.pid,
    clientInfo: recorded.clientInfo,
    locale: 'en',
    rootPath: ws,
    rootUri: wsUri,
    capabilities: recorded.capabilities,
    initializationOptions,
    trace: 'off',
    workspaceFolders: [{ uri: wsUri, name: path.basename(ws) }],
  });
  seen.serverInfo = init.serverInfo;
  seen.executeCommands = (init.capabilities.executeCommandProvider || {}).commands || [];
  seen.codeActionResolve = !!(init.capabilities.codeActionProvider || {}).resolveProvider;
  await conn.sendNotification(p.InitializedNotification.type, {});
  sendConfiguration();  // SyncConfigurationFeature.initialize with synchronize.configurationSection
  mark('initialized');
  log('initialized', JSON.stringify(init.serverInfo));

  const app = open('app.py', 'python');

  if (!generic) {
    // Status bar feed.
    await until(() => seen.connectionStatus.some((s) => s.state === 'connected'), 10000,
      'no oropendola/connectionStatus with state "connected"');
    mark('connected');

    // oropendola.chat: showInputBox, then the request with a workDoneToken under withProgress.
    const token = `vscode-chat-${process.pid}`;
    watchProgress(token);
    const appText = documents[app].text;
    const totalLine = appText.split('\n').findIndex((l) => l.startsWith('def total'));
    const chat = await conn.sendRequest('oropendola/chat', {
      message: 'What does total do?',
      textDocument: { uri: app },
      range: rangeOfLines(appText, totalLine, totalLine + 4),
      workDoneToken: token,
    });
    mark('chat');
    seen.chat = { token, conversationId: chat.conversationId, content: chat.content };
    await until(() => seen.progress[token].some((v) => v.kind === 'end'), 5000, 'chat progress never ended');
    log('chat answered', JSON.stringify(chat.content.slice(0, 60)), 'progress',
      seen.progress[token].map((v) => v.kind).join(','));

    // Code actions on the selection (the light bulb), then the user picks "Document":
    // VS Code resolves it (resolveSupport: edit) and applies the edit it gets back.
    const selection = rangeOfLines(appText, totalLine, totalLine + 4);
    const actions = await conn.sendRequest(p.CodeActionRequest.type, {
      textDocument: { uri: app }, range: selection,
      context: { diagnostics: [], triggerKind: p.CodeActionTriggerKind ? p.CodeActionTriggerKind.Invoked : 1 },
    });
    seen.codeActions = (actions || []).map((a) => ({ title: a.title, kind: a.kind, hasData: a.data !== undefined, hasEdit: !!a.edit, command: a.command && a.command.command }));
    const documentAction = (actions || []).find((a) => /Document/.test(a.title));
    if (!documentAction) fail(`no "Document" code action in ${JSON.stringify(seen.codeActions)}`);
    const resolved = await conn.sendRequest(p.CodeActionResolveRequest.type, documentAction);
    if (!resolved.edit) fail(`codeAction/resolve gave no edit: ${JSON.stringify(resolved)}`);
    mark('resolved');
    seen.resolvedEdit = resolved.edit;
    const before = documents[app].text;
    applyWorkspaceEdit(resolved.edit);
    seen.documentEdit = { before, after: documents[app].text, version: documents[app].version };
    save(app);  // analyzeOnSave -> diagnostics with source "oropendola"
    await until(() => oropendolaDiagnostics(app).length > 0, 10000, 'no oropendola diagnostics after saving app.py');

    // tasks.sh: select `touch done.txt`, take "Oropendola: run … in the shell"; VS Code runs the
    // action's command (workspace/executeCommand) and shows the server's question as a dialog.
    const tasks = open('tasks.sh', 'shellscript');
    const tasksText = documents[tasks].text;
    const touchLine = tasksText.split('\n').findIndex((l) => l.startsWith('touch done.txt'));
    const shellActions = await conn.sendRequest(p.CodeActionRequest.type, {
      textDocument: { uri: tasks }, range: rangeOfLines(tasksText, touchLine, touchLine),
      context: { diagnostics: [], triggerKind: 1 },
    });
    seen.shellActions = (shellActions || []).map((a) => a.title);
    const run = (shellActions || []).find((a) => /in the shell/.test(a.title) && a.command);
    if (!run) fail(`no shell action in ${JSON.stringify(seen.shellActions)}`);
    seen.shellResult = await conn.sendRequest(p.ExecuteCommandRequest.type,
      { command: run.command.command, arguments: run.command.arguments });
    mark('shell');
    seen.doneTxt = fs.existsSync(path.join(ws, 'done.txt'));
  } else {
    save(app);
    await until(() => oropendolaDiagnostics(app).length > 0, 10000, 'no oropendola diagnostics after saving app.py');
  }
  mark('diagnostics');
  seen.appDiagnostics = oropendolaDiagnostics(app).map((d) => ({ code: d.code, message: d.message, line: d.range.start.line }));

  await conn.sendRequest(p.ShutdownRequest.type);
  await conn.sendNotification(p.ExitNotification.type);
  await until(() => child.exitCode !== null, 5000, 'server did not exit after shutdown/exit');
  mark('exited');
  seen.exitCode = child.exitCode;
  seen.ms = Date.now() - t0;
  console.log(`RESULT ${JSON.stringify(seen)}`);
  process.exit(0);
})().catch((e) => fail((e && e.stack) || JSON.stringify(e)));
