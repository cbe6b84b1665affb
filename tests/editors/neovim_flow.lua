-- Headless end-to-end run of Neovim's own LSP client against oropendola-ls, with the shipped
-- client-configs/neovim on the runtimepath, set up exactly as its README says.
-- Run from the sample workspace:
--   OROPENDOLA_NVIM_CONFIG=<repo>/client-configs/neovim \
--     nvim --headless -u NONE -i NONE -n -c 'luafile tests/editors/neovim_flow.lua'
-- Evidence lines go to stdout; the last one is "PASS ..." (exit 0) or "FAIL: ..." (exit 1).
local t0 = vim.uv.hrtime()
local function ms() return math.floor((vim.uv.hrtime() - t0) / 1e6) end
local function out(fmt, ...) io.stdout:write(('[nvim %5dms] ' .. fmt .. '\n'):format(ms(), ...)) end
local stage = 'start'
local function fail(msg)
  local log = vim.fn.readfile(vim.lsp.log.get_filename()) -- client errors, server stderr (WARN+)
  for i = math.max(1, #log - 30), #log do out('lsp.log | %s', log[i]) end
  out('FAIL: %s (stage %s)', msg, stage)
  io.stdout:flush()
  vim.cmd('cquit 1')
end
local function step(name) stage = name; out('-- %s', name) end
local function wait(ms_, pred) return vim.wait(ms_, pred, 10) end
vim.defer_fn(function() fail('watchdog: still running after 45 s') end, 45000)

local config_dir = assert(os.getenv('OROPENDOLA_NVIM_CONFIG'), 'OROPENDOLA_NVIM_CONFIG is not set')
local workspace = vim.fn.getcwd()

-- evidence collectors (what a UI plugin or statusline would see) ---------------------------------
local progress, notes, selects = {}, {}, {}
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(ev)
    local v = ev.data.params.value
    table.insert(progress, v.kind)
    out('LspProgress %s title=%q message=%q', v.kind, tostring(v.title), tostring(v.message):sub(1, 60))
  end,
})
vim.notify = function(msg, level) -- what nvim-notify/fidget/snacks replace
  table.insert(notes, msg)
  out('notify[%s] %s', tostring(level), msg)
end
-- Neovim routes window/showMessageRequest through vim.ui.select; under --headless its default
-- (inputlist) would wait forever. Replace it as telescope/dressing/fzf-lua do and pick "Execute".
vim.ui.select = function(items, opts, on_choice)
  local titles = vim.tbl_map(opts.format_item or tostring, items)
  table.insert(selects, { prompt = opts.prompt, titles = titles })
  for i, it in ipairs(items) do
    if titles[i] == 'Execute' then
      out('vim.ui.select prompt=%q items=%s -> Execute', opts.prompt or '', table.concat(titles, '|'))
      return on_choice(it, i)
    end
  end
  out('vim.ui.select prompt=%q items=%s -> (cancel)', opts.prompt or '', table.concat(titles, '|'))
  on_choice(nil)
end

-- set-up, as the README says (filetype detection is on in any normal config; -u NONE turns it off)
step('setup')
vim.cmd('filetype on')
vim.opt.rtp:prepend(config_dir)
vim.lsp.enable('oropendola')
local oropendola = require('oropendola')
oropendola.setup()
out('nvim %s, config %s', tostring(vim.version()), vim.api.nvim_get_runtime_file('lsp/oropendola.lua', false)[1])

-- 1. open app.py: the client starts from lsp/oropendola.lua -----------------------------------------
step('attach')
vim.cmd.edit('app.py')
local app = vim.api.nvim_get_current_buf()
if not wait(10000, function() return #vim.lsp.get_clients({ bufnr = app, name = 'oropendola' }) > 0 end) then
  return fail('no oropendola client attached to app.py (filetype=' .. vim.bo[app].filetype .. ')')
end
local client = vim.lsp.get_clients({ bufnr = app, name = 'oropendola' })[1]
if not wait(15000, function() return client.initialized end) then return fail('server did not initialize') end
out('initialized: server=%s root=%s codeAction resolve=%s', vim.inspect(client.server_info),
  tostring(client.root_dir), vim.inspect((client.server_capabilities.codeActionProvider or {}).resolveProvider))
if client.root_dir ~= workspace then return fail('root_dir is not the workspace: ' .. tostring(client.root_dir)) end


-- 2. :write at once -> analysis diagnostics (analyzeOnSave from the shipped settings) ----------
step('analysis')
vim.cmd('write')
vim.cmd('OropendolaStatus')
if not wait(10000, function() return #vim.tbl_filter(function(n) return n:find('signed in as', 1, true) end, notes) > 0 end) then
  return fail(':OropendolaStatus did not report a signed-in user')
end
local function ours(buf) return vim.diagnostic.get(buf) end
if not wait(15000, function()
  return #vim.tbl_filter(function(d) return d.source == 'oropendola' end, ours(app)) > 0
end) then
  return fail('no diagnostics with source oropendola after :write')
end
for _, d in ipairs(ours(app)) do
  out('diagnostic %d:%d [%s %s] %s', d.lnum + 1, d.col, tostring(d.source), tostring(d.code), d.message)
end

-- 3. code actions on a selection (function total, lines 5-9) ------------------------------------
step('code actions')
local last = vim.api.nvim_buf_get_lines(app, 8, 9, false)[1]
local params = {
  textDocument = { uri = vim.uri_from_bufnr(app) },
  range = { start = { line = 4, character = 0 }, ['end'] = { line = 8, character = #last } },
  context = { diagnostics = {}, triggerKind = 1 },
}
local res = vim.lsp.buf_request_sync(app, 'textDocument/codeAction', params, 5000) or {}
local titles = {}
for _, a in ipairs((res[client.id] or {}).result or {}) do
  table.insert(titles, a.title)
  out('code action %q kind=%s resolvable=%s', a.title, tostring(a.kind), tostring(a.data ~= nil))
end
if not vim.tbl_contains(titles, 'Oropendola: Document') then return fail('no "Oropendola: Document" action') end

-- take it through the UI entry point (gra / :lua vim.lsp.buf.code_action()): resolve -> edit
local before = table.concat(vim.api.nvim_buf_get_lines(app, 0, -1, false), '\n')
local tick = vim.b[app].changedtick
vim.api.nvim_win_set_cursor(0, { 5, 0 })
vim.lsp.buf.code_action({
  apply = true,
  range = { start = { 5, 0 }, ['end'] = { 9, #last } },
  filter = function(a) return a.title == 'Oropendola: Document' end,
})
if not wait(15000, function() return vim.b[app].changedtick ~= tick end) then
  return fail('"Oropendola: Document" did not change the buffer')
end
local after = vim.api.nvim_buf_get_lines(app, 0, -1, false)
if table.concat(after, '\n') == before then return fail('buffer text unchanged') end
out('buffer edited by "Oropendola: Document": %d -> %d lines; lines 5-12 now:', #vim.split(before, '\n'), #after)
for i = 5, math.min(12, #after) do out('  | %s', after[i]) end
if not table.concat(after, '\n'):find('def total(values):', 1, true) then return fail('def total lost') end

-- 4. tasks.sh line 3: "run `touch done.txt` in the shell", confirmed through vim.ui.select ------
step('command confirmation')
vim.cmd.edit('tasks.sh')
local sh = vim.api.nvim_get_current_buf()
if not wait(5000, function() return vim.lsp.buf_is_attached(sh, client.id) end) then
  return fail('tasks.sh (filetype ' .. vim.bo[sh].filetype .. ') not attached')
end
local line3 = vim.api.nvim_buf_get_lines(sh, 2, 3, false)[1]
vim.api.nvim_win_set_cursor(0, { 3, 0 })
local run_title = 'Oropendola: run `' .. line3 .. '` in the shell'
vim.lsp.buf.code_action({
  apply = true,
  range = { start = { 3, 0 }, ['end'] = { 3, #line3 } },
  filter = function(a) out('offered on line 3: %q', a.title) return a.title == run_title end,
})
local done = workspace .. '/done.txt'
if not wait(15000, function() return vim.uv.fs_stat(done) ~= nil end) then
  return fail(('done.txt not created; vim.ui.select calls: %s'):format(vim.inspect(selects)))
end
local asked = selects[#selects]
if not (asked and asked.prompt:find('touch done.txt', 1, true)) then
  return fail('the confirmation did not go through vim.ui.select: ' .. vim.inspect(selects))
end
out('done.txt exists after confirming %q', asked.prompt)

-- 5. index, workspace search, chat ------------------------------------------------------------
step('index and search')
vim.cmd.buffer(app)
vim.cmd('OropendolaIndex')
local function note(pattern)
  for _, n in ipairs(notes) do if n:find(pattern) then return n end end
end
wait(15000, function() return note('indexed %d+ files') or note('indexWorkspace failed') end)
if not note('indexed %d+ files') then return fail(':OropendolaIndex did not finish') end
vim.cmd('OropendolaSearch total')
if not wait(10000, function() return #vim.fn.getqflist() > 0 end) then return fail(':OropendolaSearch found nothing') end
for _, item in ipairs(vim.fn.getqflist()) do
  out('search hit %s:%d %s', vim.fn.fnamemodify(vim.fn.bufname(item.bufnr), ':t'), item.lnum, item.text:sub(1, 60))
end
vim.cmd.cclose()

step('chat')
local chat_done = false
vim.api.nvim_create_autocmd('User', { pattern = 'OropendolaChatDone', callback = function() chat_done = true end })
vim.cmd('5,9OropendolaChat What does total do?')
if not wait(20000, function() return chat_done end) then return fail(':OropendolaChat got no answer') end
local chat = vim.api.nvim_buf_get_lines(oropendola.chat_buffer(), 0, -1, false)
local answer_at = vim.fn.index(chat, '## Oropendola')
if answer_at < 0 or #chat < answer_at + 3 or chat[answer_at + 3]:find('^%*%*Error') then
  return fail('chat buffer has no answer: ' .. vim.inspect(chat))
end
out('chat answer (%d lines, conversation %s): %s', #chat - answer_at - 2, tostring(oropendola.conversation_id),
  chat[answer_at + 3]:sub(1, 70))

-- 6. progress seen, clean shut-down -------------------------------------------------------------
step('shutdown')
if not (vim.tbl_contains(progress, 'begin') and vim.tbl_contains(progress, 'end')) then
  return fail('LspProgress begin/end not seen: ' .. table.concat(progress, ','))
end
local counts = {}
for _, k in ipairs(progress) do counts[k] = (counts[k] or 0) + 1 end
out('progress kinds seen: begin=%d report=%d end=%d', counts.begin or 0, counts.report or 0, counts['end'] or 0)
client:stop()
wait(3000, function() return client:is_stopped() end)
out('PASS total %d ms', ms())
io.stdout:flush()
vim.cmd('qall!')
