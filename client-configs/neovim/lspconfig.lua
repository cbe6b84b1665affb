-- Oropendola AI language server for nvim-lspconfig's setup{} style. Neovim 0.11+ without
-- lspconfig: use lsp/oropendola.lua and vim.lsp.enable('oropendola') instead.
-- In init.lua, after nvim-lspconfig is loaded:
--   dofile('/path/to/client-configs/neovim/lspconfig.lua')   -- or paste this file
--   require('lspconfig').oropendola.setup({})
-- Keep in step with lsp/oropendola.lua (tests/editors/test_neovim.py compares them).
local configs = require('lspconfig.configs')
local util = require('lspconfig.util')

if not configs.oropendola then
  configs.oropendola = {
    default_config = {
      cmd = { 'oropendola-ls' }, -- or { 'oropendola-ls', '--embedded' } offline, no account
      filetypes = {
        'c', 'cpp', 'cs', 'css', 'dart', 'go', 'html', 'java', 'javascript', 'javascriptreact',
        'json', 'kotlin', 'lua', 'php', 'python', 'ruby', 'rust', 'scala', 'sql', 'swift',
        'toml', 'typescript', 'typescriptreact', 'vue', 'yaml',
        'markdown', 'sh', 'bash', 'zsh',
      },
      root_dir = util.root_pattern('.git', '.hg', 'pyproject.toml', 'package.json', 'Cargo.toml', 'go.mod'),
      single_file_support = true,
      -- analyzeOnSave: saved files are analysed and the findings shown as diagnostics
      settings = { oropendola = { analyzeOnSave = true } },
      before_init = function(params, config) -- the settings hold from the first message on
        params.initializationOptions = vim.tbl_deep_extend('force', config.settings or {},
          params.initializationOptions or {})
      end,
    },
    docs = {
      description = 'Oropendola AI assistant (chat, code actions, workspace search, analysis): `oropendola-ls`.',
    },
  }
end
