-- Oropendola AI language server for Neovim 0.11+ (vim.lsp.config / vim.lsp.enable).
--
-- Put client-configs/neovim on the 'runtimepath' (or copy this file to
-- ~/.config/nvim/lsp/oropendola.lua), then: vim.lsp.enable('oropendola')
-- Override anything with vim.lsp.config('oropendola', { ... }) before enabling it.
--
-- `oropendola-ls` must be on PATH (sign in once with `oropendola-ls login`), or set
-- cmd = { 'oropendola-ls', '--embedded' } to work offline with no account.
---@type vim.lsp.Config
return {
  cmd = { 'oropendola-ls' },
  filetypes = {
    'c', 'cpp', 'cs', 'css', 'dart', 'go', 'html', 'java', 'javascript', 'javascriptreact',
    'json', 'kotlin', 'lua', 'php', 'python', 'ruby', 'rust', 'scala', 'sql', 'swift',
    'toml', 'typescript', 'typescriptreact', 'vue', 'yaml',
    'markdown', -- chat documents (*.oropendola.md) and "run … in the shell" on commands
    'sh', 'bash', 'zsh', -- shell scripts: select a command, code action "run … in the shell"
  },
  root_markers = { '.git', '.hg', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod' },
  -- Answered to the server's workspace/configuration (section "oropendola") and sent with
  -- workspace/didChangeConfiguration. analyzeOnSave: each saved file is analysed by the
  -- backend and its findings shown as diagnostics (source "oropendola"); the file's text is
  -- sent on every save, so set it to false if you do not want that. Do not set serverUrl here
  -- unless you use another backend: the default is https://oropendola.ai (or
  -- $OROPENDOLA_SERVER_URL).
  settings = {
    oropendola = {
      analyzeOnSave = true,
    },
  },
  -- The same settings as initializationOptions, so they hold from the very first message
  -- (a file saved before the server has asked for its configuration is analysed too).
  before_init = function(params, config)
    params.initializationOptions = vim.tbl_deep_extend('force', config.settings or {},
      params.initializationOptions or {})
  end,
}
