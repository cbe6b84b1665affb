// Oropendola for VS Code: a thin client of oropendola-ls (plain JavaScript, no build step).
// The server does the work: chat, code actions (resolved with edits), analysis diagnostics,
// workspace symbols from the AI index, the command gate with its confirmation dialog
// (window/showMessageRequest) and $/progress. This file starts it, keeps the oropendola.*
// settings in sync, shows the connection state in the status bar and adds the commands that
// need custom requests: oropendola.chat and oropendola.search. oropendola.signIn, signOut,
// reconnect and indexWorkspace are the server's own commands (executeCommandProvider), which
// vscode-languageclient registers as VS Code commands.
'use strict';

const crypto = require('crypto');
const vscode = require('vscode');
const {
  LanguageClient,
  TransportKind,
  DidChangeConfigurationNotification,
  WorkDoneProgress,
} = require('vscode-languageclient/node');

const SECTION = 'oropendola';
// Client-side settings: how to start the server; never sent to it.
const CLIENT_ONLY = new Set(['serverPath', 'serverArgs']);
const LANGUAGES = [
  'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust',
  'java', 'kotlin', 'c', 'cpp', 'csharp', 'ruby', 'php', 'swift', 'lua', 'shellscript',
  'html', 'css', 'scss', 'json', 'jsonc', 'yaml', 'toml', 'sql', 'markdown', 'plaintext',
];
const STATE_ICONS = {
  connected: '$(check)',
  connecting: '$(sync~spin)',
  reconnecting: '$(sync~spin)',
  disconnected: '$(debug-disconnect)',
  error: '$(error)',
};

let client;
let statusItem;
let conversationId;

/** The oropendola.* settings the user set (not the defaults, so the server's own defaults and
 * OROPENDOLA_SERVER_URL apply), without the client-only ones. */
function userSettings(keys, resource) {
  const config = vscode.workspace.getConfiguration(SECTION, resource);
  const result = {};
  for (const key of keys) {
    const seen = config.inspect(key);
    if (!seen) continue;
    const value = seen.workspaceFolderValue ?? seen.workspaceValue ?? seen.globalValue;
    if (value !== undefined) result[key] = value;
  }
  return result;
}

function showStatus(params) {
  const state = (params && params.state) || 'disconnected';
  statusItem.text = `${STATE_ICONS[state] || '$(circle-outline)'} Oropendola`;
  const lines = [`Oropendola: ${state}`];
  if (params && params.maxAttempts && (state === 'reconnecting' || state === 'connecting')) {
    lines.push(`attempt ${params.attempt}/${params.maxAttempts}`
      + (params.delayMs ? `, next in ${Math.round(params.delayMs / 1000)} s` : ''));
  }
  if (params && params.error) lines.push(params.error);
  lines.push('Click to reconnect.');
  statusItem.tooltip = lines.join('\n');
  statusItem.backgroundColor = state === 'error'
    ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  statusItem.show();
}

function editorContext() {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.uri.scheme !== 'file') return {};
  const context = { textDocument: { uri: editor.document.uri.toString() } };
  if (!editor.selection.isEmpty) {
    context.range = client.code2ProtocolConverter.asRange(editor.selection);
  }
  return context;
}

async function chat() {
  const message = await vscode.window.showInputBox({
    title: 'Ask Oropendola',
    prompt: 'About the current file and selection',
    placeHolder: 'Explain this function',
  });
  if (!message) return;
  const params = { message, conversationId, ...editorContext(), workDoneToken: crypto.randomUUID() };
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Oropendola', cancellable: true },
    async (progress, token) => {
      let text = '';
      const stream = client.onProgress(WorkDoneProgress.type, params.workDoneToken, (value) => {
        if (value.kind === 'report' && value.message) {
          text += value.message;
          progress.report({ message: text.length > 80 ? `…${text.slice(-80)}` : text });
        } else if (value.message) {
          progress.report({ message: value.message });
        }
      });
      try {
        return await client.sendRequest('oropendola/chat', params, token);
      } finally {
        stream.dispose();
      }
    },
  ).then(undefined, (error) => {
    if (error && error.code !== -32800) vscode.window.showErrorMessage(`Oropendola: ${error.message}`);
    return undefined;
  });
  if (!answer) return;
  conversationId = answer.conversationId;
  const content = `## You\n\n${message}\n\n## Oropendola\n\n${answer.content}\n`;
  const document = await vscode.workspace.openTextDocument({ language: 'markdown', content });
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: false });
}

async function search() {
  const query = await vscode.window.showInputBox({
    title: 'Oropendola search',
    prompt: 'Search the indexed workspace (run "Oropendola: Index the workspace" first)',
  });
  if (!query) return;
  let answer;
  try {
    answer = await client.sendRequest('oropendola/search', { query, limit: 30 });
  } catch (error) {
    vscode.window.showErrorMessage(`Oropendola: ${error.message}`);
    return;
  }
  const results = (answer && answer.results) || [];
  if (!results.length) {
    vscode.window.showInformationMessage(`Oropendola: nothing found for "${query}".`);
    return;
  }
  const pick = await vscode.window.showQuickPick(results.map((hit) => {
    const uri = vscode.Uri.parse(hit.uri);
    return {
      label: (hit.snippet || '').trim().split('\n')[0] || vscode.workspace.asRelativePath(uri),
      description: `${vscode.workspace.asRelativePath(uri)}:${hit.range.start.line + 1}`,
      detail: (hit.snippet || '').trim().split('\n').slice(1, 3).join(' ⏎ '),
      hit,
      uri,
    };
  }), { title: `Oropendola: ${query}`, matchOnDescription: true, matchOnDetail: true });
  if (!pick) return;
  await vscode.window.showTextDocument(pick.uri, {
    selection: client.protocol2CodeConverter.asRange(pick.hit.range),
  });
}

async function activate(context) {
  const properties = context.extension.packageJSON.contributes.configuration.properties;
  const keys = Object.keys(properties)
    .map((name) => name.slice(SECTION.length + 1))
    .filter((key) => !CLIENT_ONLY.has(key));
  const config = vscode.workspace.getConfiguration(SECTION);
  const command = config.get('serverPath') || 'oropendola-ls';
  const args = config.get('serverArgs') || [];
  const folder = vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders[0];

  const serverOptions = {
    command,
    args,
    transport: TransportKind.stdio,
    options: folder ? { cwd: folder.uri.fsPath } : {},
  };
  const clientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: 'file', language })),
    synchronize: { configurationSection: SECTION },
    initializationOptions: () => userSettings(keys),
    middleware: {
      workspace: {
        // Answer the section with what the user set, so unset settings keep the server's
        // defaults (and OROPENDOLA_SERVER_URL keeps working).
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          return params.items.map((item, i) => (item.section === SECTION
            ? userSettings(keys, item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
            : answers[i]));
        },
        didChangeConfiguration: async () => client.sendNotification(
          DidChangeConfigurationNotification.type, { settings: { [SECTION]: userSettings(keys) } },
        ),
      },
    },
  };
  client = new LanguageClient('oropendola', 'Oropendola', serverOptions, clientOptions);

  statusItem = vscode.window.createStatusBarItem('oropendola.status', vscode.StatusBarAlignment.Left, 10);
  statusItem.name = 'Oropendola';
  statusItem.command = 'oropendola.reconnect';
  showStatus({ state: 'disconnected' });
  context.subscriptions.push(
    statusItem,
    client.onNotification('oropendola/connectionStatus', showStatus),
    vscode.commands.registerCommand('oropendola.chat', chat),
    vscode.commands.registerCommand('oropendola.search', search),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(`${SECTION}.serverPath`) || event.affectsConfiguration(`${SECTION}.serverArgs`)) {
        vscode.window.showInformationMessage('Oropendola: reload the window to restart oropendola-ls with the new command.');
      }
    }),
  );
  try {
    await client.start();
  } catch (error) {
    showStatus({ state: 'error', error: error.message });
    vscode.window.showErrorMessage(
      `Oropendola: could not start "${command}" (${error.message}). Install oropendola-ls or set oropendola.serverPath.`,
    );
  }
}

async function deactivate() {
  if (client) await client.stop();
}

module.exports = { activate, deactivate };
