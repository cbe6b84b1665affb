-- Optional helpers for the Oropendola language server (Neovim 0.11+):
--   require('oropendola').setup()
-- adds progress messages, an Oropendola prompt for command confirmations (through
-- vim.ui.select, so telescope/dressing/fzf-lua/snacks pickers keep working) and the commands
--   :OropendolaChat[!] {message}   chat about the buffer or the selected lines (! = new chat)
--   :OropendolaSearch {query}      search the workspace index (workspace symbols -> quickfix)
--   :OropendolaIndex[!]            index the workspace folders (! = re-send everything)
--   :OropendolaStatus              who is signed in, where, and the connection
local M = {}

M.name = 'oropendola'
M.conversation_id = nil ---@type string?  the chat :OropendolaChat continues

local function notify(msg, level)
  vim.notify('Oropendola: ' .. msg, level or vim.log.levels.INFO)
end

--- The Oropendola client attached to `bufnr`, else any running one.
---@return vim.lsp.Client?
function M.client(bufnr)
  local c = vim.lsp.get_clients({ bufnr = bufnr or 0, name = M.name })[1]
    or vim.lsp.get_clients({ name = M.name })[1]
  if not c then
    notify('the language server is not running; open a file it handles', vim.log.levels.WARN)
  end
  return c
end

local function request(method, params, on_result, bufnr)
  local c = M.client(bufnr)
  if not c then
    return
  end
  c:request(method, params, function(err, result)
    if err then
      return notify(('%s failed: %s'):format(method, err.message or vim.inspect(err)), vim.log.levels.ERROR)
    end
    on_result(result, c)
  end, bufnr)
end

-- progress ------------------------------------------------------------------------------------

--- One line of $/progress: "Oropendola: <title>: <message> (<pct>%)".
function M.progress_text(value)
  local parts = {}
  for _, s in ipairs({ value.title, value.message }) do
    if s and s ~= '' then
      table.insert(parts, s)
    end
  end
  local text = vim.trim((table.concat(parts, ': '):gsub('%s+', ' ')))
  if value.percentage then
    text = ('%s (%d%%)'):format(text, value.percentage)
  end
  return vim.startswith(text, 'Oropendola') and text or ('Oropendola: ' .. text)
end

local function on_progress(ev)
  local c = vim.lsp.get_client_by_id(ev.data.client_id)
  local value = ev.data.params.value
  if not c or c.name ~= M.name or type(value) ~= 'table' then
    return
  end
  -- one screen line, never a hit-enter prompt
  local text = M.progress_text(value)
  local width = math.max(vim.v.echospace - 1, 20)
  if vim.fn.strdisplaywidth(text) > width then
    text = vim.fn.strcharpart(text, 0, width - 1) .. '…'
  end
  vim.api.nvim_echo({ { text } }, false, {})
end

-- command confirmation ------------------------------------------------------------------------

--- window/showMessageRequest (the command gate's Execute / Cancel / Always allow) through
--- vim.ui.select, looked up when the request arrives, so a picker plugin loaded later is used.
function M.show_message_request(err, params, ctx)
  local co, is_main = coroutine.running()
  if not co or is_main then -- not inside the client's request coroutine: Neovim's own prompt
    return vim.lsp.handlers['window/showMessageRequest'](err, params, ctx)
  end
  local actions = params.actions or {}
  if #actions == 0 then
    notify(params.message)
    return vim.NIL
  end
  vim.ui.select(actions, {
    prompt = 'Oropendola: ' .. params.message,
    kind = 'oropendola',
    format_item = function(action)
      return action.title
    end,
  }, function(choice)
    vim.schedule(function() -- resume after the yield, also for a synchronous vim.ui.select
      coroutine.resume(co, choice or vim.NIL)
    end)
  end)
  return coroutine.yield()
end

-- chat ----------------------------------------------------------------------------------------

local chat_buf ---@type integer?

--- The markdown scratch buffer of :OropendolaChat, shown in a split.
function M.chat_buffer()
  if not (chat_buf and vim.api.nvim_buf_is_valid(chat_buf)) then
    chat_buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(chat_buf, 'oropendola://chat')
    vim.bo[chat_buf].filetype = 'markdown'
    vim.bo[chat_buf].bufhidden = 'hide'
  end
  if vim.fn.bufwinid(chat_buf) == -1 then
    local here = vim.api.nvim_get_current_win()
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, chat_buf)
    vim.api.nvim_set_current_win(here)
  end
  return chat_buf
end

local function append(buf, lines)
  local last = vim.api.nvim_buf_line_count(buf)
  local first = vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1]
  if last == 1 and first == '' then
    last = 0 -- a fresh buffer: replace its one empty line
  end
  vim.api.nvim_buf_set_lines(buf, last, -1, false, lines)
  local win = vim.fn.bufwinid(buf)
  if win ~= -1 then
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  end
  return last
end

--- The selected lines (a :range) or the cursor, in the client's position encoding.
local function chat_range(bufnr, cmd, encoding)
  if cmd.range == 0 then
    return vim.lsp.util.make_range_params(0, encoding).range
  end
  local last = vim.api.nvim_buf_get_lines(bufnr, cmd.line2 - 1, cmd.line2, false)[1] or ''
  return {
    start = { line = cmd.line1 - 1, character = 0 },
    ['end'] = { line = cmd.line2 - 1, character = vim.str_utfindex(last, encoding) },
  }
end

--- Send `message` with the current buffer (and selection) as context; show the answer.
---@param cmd { args: string, range: integer, line1: integer, line2: integer, bang: boolean }
function M.chat(cmd)
  local message = vim.trim(cmd.args or '')
  if message == '' then
    return notify('usage: :OropendolaChat {message}', vim.log.levels.WARN)
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local c = M.client(bufnr)
  if not c then
    return
  end
  if cmd.bang then
    M.conversation_id = nil
  end
  local params = { message = message, conversationId = M.conversation_id }
  if vim.lsp.buf_is_attached(bufnr, c.id) then
    params.textDocument = { uri = vim.uri_from_bufnr(bufnr) }
    params.range = chat_range(bufnr, cmd, c.offset_encoding)
  end
  local buf = M.chat_buffer()
  local header = { '## You', '', message, '', '## Oropendola', '' }
  if vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] ~= '' then
    table.insert(header, 1, '')
  end
  append(buf, header)
  local at = append(buf, { '_…thinking…_' })
  c:request('oropendola/chat', params, function(err, result)
    if not vim.api.nvim_buf_is_valid(buf) then
      return
    end
    local lines = err and { '**Error:** ' .. (err.message or vim.inspect(err)) }
      or vim.split(result.content or '', '\n', { plain = true })
    vim.api.nvim_buf_set_lines(buf, at, at + 1, false, lines)
    if result then
      M.conversation_id = result.conversationId
    end
    local win = vim.fn.bufwinid(buf)
    if win ~= -1 then
      vim.api.nvim_win_set_cursor(win, { at + 1, 0 })
    end
    vim.api.nvim_exec_autocmds('User', { pattern = 'OropendolaChatDone', modeline = false })
  end, bufnr)
end

-- search, index, status -----------------------------------------------------------------------

--- Workspace search (workspace/symbol over the backend's index) into the quickfix list.
function M.search(query)
  query = vim.trim(query or '')
  if query == '' then
    return notify('usage: :OropendolaSearch {query}', vim.log.levels.WARN)
  end
  request('workspace/symbol', { query = query }, function(result, c)
    local items = vim.lsp.util.symbols_to_items(result or {}, 0, c.offset_encoding)
    vim.fn.setqflist({}, ' ', { title = 'Oropendola: ' .. query, items = items })
    if #items == 0 then
      return notify(('nothing found for %q (run :OropendolaIndex first?)'):format(query))
    end
    vim.cmd('botright copen')
  end)
end

function M.index(force)
  notify('indexing the workspace…')
  request('oropendola/indexWorkspace', force and { force = true } or vim.empty_dict(), function(r)
    notify(('indexed %d files: %d sent, %d skipped, %d unchanged, %d removed (%d ms)'):format(
      r.filesScanned or 0, r.filesSent or 0, r.filesSkipped or 0, r.unchanged or 0,
      r.removed or 0, r.durationMs or 0))
  end)
end

function M.status()
  request('oropendola/status', vim.empty_dict(), function(s)
    local b, conn = s.backend or {}, s.connection or {}
    local who = s.signedIn and ('signed in as ' .. tostring(s.user)) or 'not signed in'
    notify(('%s at %s (%s session; realtime %s)%s'):format(who, tostring(b.url),
      tostring(s.session), tostring(conn.state), s.lastError and ('; ' .. tostring(s.lastError)) or ''))
  end)
end

-- setup ---------------------------------------------------------------------------------------

---@param opts? { progress?: boolean, confirm?: boolean, commands?: boolean }
function M.setup(opts)
  opts = vim.tbl_extend('force', { progress = true, confirm = true, commands = true }, opts or {})
  local group = vim.api.nvim_create_augroup('oropendola', { clear = true })
  if opts.progress then
    vim.api.nvim_create_autocmd('LspProgress', { group = group, callback = on_progress })
  end
  if opts.confirm then
    -- per client, so it works however the client was started (vim.lsp.enable, lspconfig)
    local function use(c)
      if c and c.name == M.name then
        c.handlers['window/showMessageRequest'] = M.show_message_request
      end
    end
    vim.api.nvim_create_autocmd('LspAttach', { group = group, callback = function(ev)
      use(vim.lsp.get_client_by_id(ev.data.client_id))
    end })
    vim.tbl_map(use, vim.lsp.get_clients({ name = M.name }))
  end
  if opts.commands then
    local command = vim.api.nvim_create_user_command
    command('OropendolaChat', M.chat, { nargs = '+', range = true, bang = true,
      desc = 'Oropendola: chat about this buffer or the selected lines (! = new chat)' })
    command('OropendolaSearch', function(c) M.search(c.args) end, { nargs = '+',
      desc = 'Oropendola: search the workspace index' })
    command('OropendolaIndex', function(c) M.index(c.bang) end, { nargs = 0, bang = true,
      desc = 'Oropendola: index the workspace (! = re-send every file)' })
    command('OropendolaStatus', M.status, { nargs = 0, desc = 'Oropendola: sign-in and connection' })
  end
  return M
end

return M
