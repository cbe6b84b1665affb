-- lspconfig.lua against a stand-in of nvim-lspconfig's configs/util modules (not installed
-- here): it must register default_config equal to lsp/oropendola.lua's table.
local registered, patterns = {}, nil
package.loaded['lspconfig.configs'] = setmetatable({}, { __newindex = function(_, k, v) registered[k] = v end })
package.loaded['lspconfig.util'] = { root_pattern = function(...) patterns = { ... }; return function() end end }
dofile(os.getenv('OROPENDOLA_NVIM_CONFIG') .. '/lspconfig.lua')
local shipped = dofile(os.getenv('OROPENDOLA_NVIM_CONFIG') .. '/lsp/oropendola.lua')
local dc = assert(registered.oropendola, 'configs.oropendola not registered').default_config
local same = vim.deep_equal(dc.cmd, shipped.cmd) and vim.deep_equal(dc.filetypes, shipped.filetypes)
  and vim.deep_equal(dc.settings, shipped.settings) and vim.deep_equal(patterns, shipped.root_markers)
  and type(dc.root_dir) == 'function' and type(dc.before_init) == type(shipped.before_init)
io.stdout:write(same and 'LSPCONFIG SAME\n' or ('LSPCONFIG DIFFERS ' .. vim.inspect({ dc, patterns }) .. '\n'))
vim.cmd(same and 'qall!' or 'cquit 1')
