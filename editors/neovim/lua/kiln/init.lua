-- kiln for Neovim: starts `kiln lsp` for your buffers and adds :KilnStatus.
--
-- Works with Neovim 0.7 (vim.lsp.start_client + vim.lsp.buf_attach_client) and with 0.8+
-- (vim.lsp.start). See editors/neovim/README.md for set-up snippets.

local M = {}

local NAME = "kiln"

local defaults = {
  -- The command that starts the server; stdio LSP.
  cmd = { "kiln", "lsp" },
  -- Filetypes to attach to; nil means every buffer that holds a file.
  filetypes = nil,
  -- Files or directories that mark a project root. A flat list means "the nearest
  -- directory that holds any of them"; a nested list gives priority, as vim.fs.root does:
  -- { { ".git", "kiln.jsonc" }, "Cargo.toml" } prefers the first group wherever it is.
  -- With no marker found, kiln runs without a workspace root (no file watching).
  root_markers = { ".git", "kiln.jsonc", "Cargo.toml", "package.json" },
  -- Append kiln's logs to this file (passed as --log-file); nil keeps them on stderr,
  -- which Neovim writes to its LSP log.
  log_file = nil,
  -- Send edits as ranges (true) or the whole text (false). nil: ranges on Neovim 0.8+, the
  -- whole text on 0.7, whose incremental sync loses the last newline when every line is
  -- replaced (ggdG, :%d, nvim_buf_set_lines(0, 0, -1, ...)). flags.allow_incremental_sync,
  -- when set, wins.
  incremental_sync = nil,
  -- Passed through to the LSP client.
  flags = nil, -- e.g. { debounce_text_changes = 0 }
  handlers = nil,
  capabilities = nil,
  on_attach = nil,
}

M.config = vim.deepcopy(defaults)

local uv = vim.uv or vim.loop

local function has(feature)
  return vim.fn.has(feature) == 1
end

-- 0.11 made client methods real methods (client:request); earlier versions have
-- closures called with a dot. `call` hides the difference for both helpers below.
local function call(client, name, ...)
  if has("nvim-0.11") then
    return client[name](client, ...)
  end
  return client[name](...)
end

--- Sends a request and waits for the answer.
--- @return table|nil response { result = ..., err = ... }, string|nil error
function M.request_sync(client, method, params, timeout_ms, bufnr)
  return call(client, "request_sync", method, params, timeout_ms, bufnr)
end

--- Sends a request; `handler(err, result, ctx)` gets the answer.
function M.request(client, method, params, handler, bufnr)
  return call(client, "request", method, params, handler, bufnr)
end

-- The clients this plugin started: client id -> root (or "" for no root). Used on 0.7,
-- where there is no vim.lsp.start to find a running client for us.
M._started = {}

local function all_clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = NAME })
  end
  local found = {}
  for _, client in ipairs(vim.lsp.get_active_clients()) do
    if client.name == NAME then
      table.insert(found, client)
    end
  end
  return found
end

--- The kiln client attached to `bufnr` (0 or nil: the current buffer), if any. Also finds
--- a client that is still initializing.
function M.client(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  if vim.lsp.get_clients then
    local list = vim.lsp.get_clients({ name = NAME, bufnr = bufnr, _uninitialized = true })
    if list[1] then
      return list[1]
    end
  end
  for id in pairs(M._started) do
    local c = vim.lsp.get_client_by_id(id)
    if c and vim.lsp.buf_is_attached(bufnr, c.id) then
      return c
    end
  end
  return nil
end

local function alive(id)
  -- Not vim.lsp.client_is_stopped(): on 0.7 it is also true while a client initializes.
  local c = vim.lsp.get_client_by_id(id)
  if not c then
    return false
  end
  if has("nvim-0.11") then
    return not c:is_stopped()
  end
  return not c.is_stopped()
end

local function is_list(t)
  return type(t) == "table" and (vim.islist or vim.tbl_islist)(t)
end

local function find_root(path, markers)
  if not markers or #markers == 0 then
    return nil
  end
  -- A flat list is one priority level; with nested lists, every item is its own level.
  local groups = {}
  local nested = false
  for _, m in ipairs(markers) do
    nested = nested or type(m) == "table"
  end
  if nested then
    for _, m in ipairs(markers) do
      table.insert(groups, type(m) == "table" and m or { m })
    end
  else
    groups = { markers }
  end
  local start = vim.fn.fnamemodify(path, ":p:h")
  for _, group in ipairs(groups) do
    local dir = start
    while true do
      for _, marker in ipairs(group) do
        if uv.fs_stat(dir .. "/" .. marker) then
          return dir
        end
      end
      local parent = vim.fn.fnamemodify(dir, ":h")
      if parent == dir then
        break
      end
      dir = parent
    end
  end
  return nil
end

local function wants(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or not vim.api.nvim_buf_is_loaded(bufnr) then
    return false
  end
  if vim.bo[bufnr].buftype ~= "" then
    return false
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" or name:match("^%a[%w+.-]*://") then
    return false
  end
  local filetypes = M.config.filetypes
  if filetypes then
    local ft = vim.bo[bufnr].filetype
    return vim.tbl_contains(filetypes, ft)
  end
  return true
end

local function command()
  local cmd = M.config.cmd
  if type(cmd) == "string" then
    cmd = { cmd }
  end
  cmd = vim.deepcopy(cmd)
  if M.config.log_file then
    table.insert(cmd, "--log-file")
    table.insert(cmd, vim.fn.expand(M.config.log_file))
  end
  return cmd
end

local function flags()
  local f = vim.deepcopy(M.config.flags or {})
  if f.allow_incremental_sync == nil then
    local incremental = M.config.incremental_sync
    if incremental == nil then
      incremental = has("nvim-0.8")
    end
    f.allow_incremental_sync = incremental
  end
  return f
end

local function client_config(root)
  return {
    name = NAME,
    cmd = command(),
    root_dir = root,
    flags = flags(),
    handlers = M.config.handlers,
    capabilities = M.config.capabilities,
    on_attach = M.config.on_attach,
  }
end

--- Starts kiln for `bufnr` (or reuses the one for its root) and attaches the buffer.
--- Returns the client id, or nil when the buffer is not for kiln.
function M.attach(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  if not wants(bufnr) then
    return nil
  end
  local existing = M.client(bufnr)
  if existing then
    return existing.id
  end
  local root = find_root(vim.api.nvim_buf_get_name(bufnr), M.config.root_markers)
  local config = client_config(root)

  if vim.lsp.start then
    -- 0.8 attaches the current buffer and ignores opts.bufnr, so make bufnr current.
    local id
    vim.api.nvim_buf_call(bufnr, function()
      id = vim.lsp.start(config, { bufnr = bufnr })
    end)
    if id then
      M._started[id] = root or ""
    end
    return id
  end

  -- Neovim 0.7.
  local key = root or ""
  local id
  for started, started_root in pairs(M._started) do
    if not alive(started) then
      M._started[started] = nil
    elseif started_root == key then
      id = started
    end
  end
  if not id then
    id = vim.lsp.start_client(config)
    if not id then
      vim.notify("kiln: could not start " .. table.concat(config.cmd, " "), vim.log.levels.ERROR)
      return nil
    end
    M._started[id] = key
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

local function summary(client, result)
  local docs = result.openDocuments or {}
  local watching = result.watching or "?"
  local roots = result.roots or {}
  local changes = result.externalChanges and result.externalChanges.total or 0
  return string.format(
    "kiln %s (client %d): position encoding %s, %d open document%s, watching %s, roots %s, %d external change%s",
    tostring(result.version or "?"),
    client.id,
    tostring(result.positionEncoding or "?"),
    #docs,
    #docs == 1 and "" or "s",
    watching,
    #roots == 0 and "(none)" or table.concat(roots, ", "),
    changes,
    changes == 1 and "" or "s"
  )
end

--- Asks every running kiln (the current buffer's first) for kiln/status and shows a
--- summary. `callback(client, result, err)`, if given, is called per client instead.
function M.status(callback)
  local clients = {}
  local mine = M.client(0)
  if mine then
    table.insert(clients, mine)
  end
  for _, c in ipairs(all_clients()) do
    if not mine or c.id ~= mine.id then
      table.insert(clients, c)
    end
  end
  if #clients == 0 then
    local msg = "kiln: not running (no buffer attached)"
    if callback then
      callback(nil, nil, msg)
    else
      vim.notify(msg, vim.log.levels.WARN)
    end
    return
  end
  for _, client in ipairs(clients) do
    M.request(client, "kiln/status", vim.empty_dict(), function(err, result)
      if callback then
        callback(client, result, err)
      elseif err then
        vim.notify("kiln: kiln/status failed: " .. tostring(err.message or vim.inspect(err)), vim.log.levels.ERROR)
      else
        vim.notify(summary(client, result or {}), vim.log.levels.INFO)
      end
    end)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  -- Lists replace the defaults rather than being merged index by index.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts and opts[key] ~= nil then
      M.config[key] = opts[key]
    end
  end
  if M.config.filetypes ~= nil and not is_list(M.config.filetypes) then
    error("kiln.setup: filetypes must be a list of filetypes or nil")
  end

  local group = vim.api.nvim_create_augroup("kiln", { clear = true })
  -- FileType alone misses files without a filetype (and every file under `-u NONE`, where
  -- filetype detection is off), so attach on read too when all buffers are wanted.
  local events = { "FileType" }
  if M.config.filetypes == nil then
    events = { "FileType", "BufReadPost", "BufNewFile" }
  end
  vim.api.nvim_create_autocmd(events, {
    group = group,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_user_command("KilnStatus", function()
    M.status()
  end, { desc = "Show kiln's status" })

  -- Buffers opened before setup (lazy loading). Scheduled, so that a setup() run from an
  -- autocmd in the middle of reading a file (BufReadPre) sees the whole file.
  vim.schedule(function()
    for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(bufnr) then
        M.attach(bufnr)
      end
    end
  end)
end

return M
