-- Headless test: real Neovim edits stay in sync with kiln's copy of the buffer.
--
-- From the repository root:
--   KILN_BIN=target/debug/kiln nvim --headless --clean -u NONE \
--     -c "set rtp+=editors/neovim" -c "luafile tests/editors/neovim/sync_test.lua"
-- Ends with `qall!` on success, `cquit 1` (and the reason on stderr) on failure.
-- Works with Neovim 0.7 (start_client, UTF-16 only) and 0.8+ up to 0.11 (vim.lsp.start,
-- client:request_sync, UTF-8 offered first).

local TIMEOUT_MS = 20000
local REQUEST_MS = 5000

local finished = false
local tmp_root

local function cleanup()
  if vim.g.kiln_test_keep == nil and tmp_root then
    pcall(vim.fn.delete, tmp_root, "rf")
  end
end

local function fail(msg)
  if finished then
    return
  end
  finished = true
  local v = vim.version()
  io.stderr:write(string.format("neovim sync test FAILED (nvim %d.%d.%d): %s\n", v.major, v.minor, v.patch, tostring(msg)))
  if tmp_root then
    io.stderr:write("workspace: " .. tmp_root .. "\n")
    local log = tmp_root .. "/kiln.log"
    if vim.fn.filereadable(log) == 1 then
      io.stderr:write("--- kiln log ---\n" .. table.concat(vim.fn.readfile(log), "\n") .. "\n")
    end
  end
  cleanup()
  vim.cmd("cquit 1")
end

local function info(msg)
  io.stdout:write(msg .. "\n")
end

-- A hard limit, whatever hangs.
vim.defer_fn(function()
  fail("timed out after " .. TIMEOUT_MS .. " ms")
end, TIMEOUT_MS)

local function assert_eq(actual, expected, what)
  if actual ~= expected then
    error(string.format("%s:\n  expected %s\n  got      %s", what, vim.inspect(expected), vim.inspect(actual)), 0)
  end
end

local function check(cond, what)
  if not cond then
    error(what, 0)
  end
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function run()
  local kiln_bin = os.getenv("KILN_BIN")
  check(kiln_bin and kiln_bin ~= "", "KILN_BIN is not set (path to the kiln binary)")
  kiln_bin = vim.fn.fnamemodify(kiln_bin, ":p")
  check(vim.fn.executable(kiln_bin) == 1, "KILN_BIN is not executable: " .. kiln_bin)

  local v = vim.version()
  local nvim_version = string.format("%d.%d.%d", v.major, v.minor, v.patch)
  info("neovim " .. nvim_version .. ", kiln " .. kiln_bin)

  -- Keep "N fewer lines" and undo messages out of the output.
  vim.o.report = 100000

  -- Headless Neovim would block on inputlist() in the built-in handler.
  local function no_prompt()
    return vim.NIL
  end
  vim.lsp.handlers["window/showMessageRequest"] = no_prompt

  -- A workspace: <tmp>/ws with a .git marker, the log next to it (outside the watched root).
  tmp_root = vim.fn.tempname()
  local ws = tmp_root .. "/ws"
  vim.fn.mkdir(ws .. "/.git", "p")
  vim.fn.mkdir(ws .. "/src", "p")
  local path = ws .. "/src/hello.txt"
  write_file(path, "hello world\nsecond line\nthird line\n")
  local other = ws .. "/other.txt"
  write_file(other, "on disk ü\n")
  local dos = ws .. "/dos.txt"
  write_file(dos, "one\r\ntwo\r\n")

  -- KILN_TEST_SYNC=incremental|full forces how Neovim sends edits; unset, the plugin
  -- chooses (ranges on 0.8+, the whole text on 0.7).
  local sync_mode = os.getenv("KILN_TEST_SYNC")
  if sync_mode == "" then
    sync_mode = nil
  end
  check(sync_mode == nil or sync_mode == "incremental" or sync_mode == "full", "KILN_TEST_SYNC must be incremental or full, not " .. tostring(sync_mode))
  local incremental
  if sync_mode then
    incremental = sync_mode == "incremental"
  end
  local effective_incremental = incremental
  if effective_incremental == nil then
    effective_incremental = vim.fn.has("nvim-0.8") == 1
  end
  -- Neovim 0.7's incremental sync drops the last newline when every line is replaced
  -- (its bug, not kiln's: the range it sends ends after the final newline that the buffer
  -- keeps). Those edits are skipped when 0.7 is forced to send ranges.
  local replaces_all_lines_ok = not effective_incremental or vim.fn.has("nvim-0.8") == 1
  info("sync: " .. (effective_incremental and "incremental" or "full") .. (sync_mode and " (forced)" or " (plugin default)"))

  local kiln = require("kiln")
  kiln.setup({
    cmd = { kiln_bin, "lsp" },
    incremental_sync = incremental,
    log_file = tmp_root .. "/kiln.log",
    flags = { debounce_text_changes = 0 },
    handlers = { ["window/showMessageRequest"] = no_prompt },
  })

  vim.cmd("edit " .. vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()

  local client
  local ok = vim.wait(10000, function()
    client = kiln.client(buf)
    return client ~= nil and client.initialized == true and vim.lsp.buf_is_attached(buf, client.id)
  end, 20)
  check(ok, "kiln did not attach and initialize within 10 s (client: " .. tostring(client and client.id) .. ")")
  info("attached: client " .. client.id)

  local function request(method, params, bufnr)
    local resp, err = kiln.request_sync(client, method, params, REQUEST_MS, bufnr)
    check(resp, method .. " failed: " .. tostring(err))
    check(not resp.err, method .. " returned an error: " .. vim.inspect(resp.err))
    return resp.result
  end

  local function buffer_text(b)
    local line_ending = vim.bo[b].fileformat == "dos" and "\r\n" or "\n"
    local text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, true), line_ending)
    if vim.bo[b].eol then
      text = text .. line_ending
    end
    return text
  end

  -- kiln/status's positionEncoding must be what kiln negotiates from what this Neovim
  -- offers: UTF-8 when offered (0.11), UTF-16 when nothing is offered (0.7).
  local offered = vim.tbl_get and vim.tbl_get(vim.lsp.protocol.make_client_capabilities(), "general", "positionEncodings")
    or (vim.lsp.protocol.make_client_capabilities().general or {}).positionEncodings
  local expected_encoding = "utf-16"
  if offered and vim.tbl_contains(offered, "utf-8") then
    expected_encoding = "utf-8"
  end
  local status = request("kiln/status", vim.empty_dict())
  assert_eq(status.positionEncoding, expected_encoding, "kiln/status positionEncoding (offered: " .. vim.inspect(offered) .. ")")
  check(
    status.positionEncoding == "utf-8" or status.positionEncoding == "utf-16",
    "unexpected positionEncoding " .. tostring(status.positionEncoding)
  )
  assert_eq(client.offset_encoding, status.positionEncoding, "client.offset_encoding vs kiln's positionEncoding")
  info("position encoding: " .. status.positionEncoding)
  check(
    type(status.roots) == "table" and #status.roots == 1 and (status.roots[1] == ws or status.roots[1] == vim.fn.resolve(ws)),
    "kiln/status roots: expected { " .. ws .. " }, got " .. vim.inspect(status.roots)
  )

  local n_checks = 0
  local function check_sync(label, b)
    b = b or buf
    local uri = vim.uri_from_bufnr(b)
    local result = request("kiln/read", { uri = uri }, b)
    local expected = buffer_text(b)
    if result.text ~= expected then
      error(string.format("after %s: kiln's text differs from the buffer\n  buffer: %s\n  kiln:   %s", label, vim.inspect(expected), vim.inspect(result.text)), 0)
    end
    check(type(result.identity) == "table", "after " .. label .. ": kiln/read has no identity")
    assert_eq(result.identity.kind, "buffer", "after " .. label .. ": identity.kind")
    assert_eq(result.identity.version, vim.lsp.util.buf_versions[b], "after " .. label .. ": identity.version vs vim.lsp.util.buf_versions")
    assert_eq(result.uri, uri, "after " .. label .. ": kiln/read uri")
    n_checks = n_checks + 1
    return result
  end

  local first = check_sync("open")
  check(first.identity.version >= 0, "version on open is negative")

  -- API edits with multi-byte text; columns are byte offsets.
  vim.api.nvim_buf_set_lines(buf, 1, 2, false, { "wörld 😀 ünïcödé", "日本語テキスト" })
  check_sync("nvim_buf_set_lines (replace a line with two)")
  -- Replace "ll" in "hello" with a two-byte character.
  vim.api.nvim_buf_set_text(buf, 0, 2, 0, 4, { "ŷ" })
  check_sync("nvim_buf_set_text (ll -> ŷ)")
  -- Insert right after the emoji (a surrogate pair in UTF-16): "wörld 😀" is 11 bytes.
  vim.api.nvim_buf_set_text(buf, 1, 11, 1, 11, { "|𝄞|" })
  check_sync("nvim_buf_set_text after an astral character")
  -- A change that spans lines: from inside the Japanese line into the next line.
  vim.api.nvim_buf_set_text(buf, 2, 3, 3, 5, { "∆", "new ✓", "" })
  check_sync("nvim_buf_set_text across lines")

  -- Normal-mode edits, as a person types them.
  vim.cmd("normal! ggAé😀")
  check_sync("normal! ggAé😀")
  vim.cmd("normal! GoΩ last line 🎉")
  check_sync("normal! Go…")
  vim.cmd("normal! 2Gdd")
  check_sync("normal! 2Gdd")
  vim.cmd("normal! gg0xx")
  check_sync("normal! gg0xx")
  vim.cmd("normal! 2G$x")
  check_sync("normal! 2G$x (delete the last, multi-byte character)")
  vim.cmd("normal! ggyyP")
  check_sync("normal! ggyyP")
  vim.cmd("normal! ggJ")
  check_sync("normal! ggJ (join lines)")
  vim.cmd("silent normal! u")
  check_sync("undo")
  vim.cmd("silent normal! \18") -- <C-r>
  check_sync("redo")
  vim.cmd("%s/😀/[smile]/ge")
  check_sync(":%s/😀/[smile]/ge")
  if replaces_all_lines_ok then
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
    check_sync("delete every line")
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "a", "😀😀😀", "ü" })
    check_sync("replace the whole buffer")
    vim.cmd("silent %d")
    check_sync(":%d")
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "again", "ß" })
    check_sync("refill the buffer")
  else
    info("skipped: replacing every line (Neovim 0.7 incremental sync bug)")
    vim.api.nvim_buf_set_lines(buf, 1, -1, false, { "😀😀😀", "ü" })
    check_sync("replace all lines but the first")
  end
  local many = {}
  for i = 1, 200 do
    many[i] = string.rep("é", i % 7) .. " line " .. i .. " " .. string.rep("😀", i % 3)
  end
  vim.api.nvim_buf_set_lines(buf, 1, 1, false, many)
  check_sync("insert 200 lines")
  vim.cmd("normal! 50G20dd")
  check_sync("normal! 50G20dd")

  local final = check_sync("final")
  check(final.identity.version > first.identity.version, "the version did not grow: " .. first.identity.version .. " -> " .. final.identity.version)

  -- kiln/status lists the document with the same version and size.
  status = request("kiln/status", vim.empty_dict())
  local uri = vim.uri_from_bufnr(buf)
  local doc
  for _, d in ipairs(status.openDocuments or {}) do
    if d.uri == uri then
      doc = d
    end
  end
  check(doc, "kiln/status does not list " .. uri .. ": " .. vim.inspect(status.openDocuments))
  assert_eq(doc.version, final.identity.version, "kiln/status version")
  assert_eq(doc.byteLength, #final.text, "kiln/status byteLength")
  info(string.format("status: %d open, watching %s, lineCount %d for %d buffer lines", #status.openDocuments, tostring(status.watching), doc.lineCount, vim.api.nvim_buf_line_count(buf)))

  -- A file that is not open is read from disk.
  local disk = request("kiln/read", { uri = vim.uri_from_fname(other) })
  assert_eq(disk.text, "on disk ü\n", "kiln/read of a closed file")
  assert_eq(disk.identity.kind, "disk", "kiln/read of a closed file: identity.kind")
  assert_eq(disk.identity.length, #"on disk ü\n", "kiln/read of a closed file: identity.length")

  -- A CRLF buffer: Neovim sends \r\n line endings.
  vim.cmd("edit " .. vim.fn.fnameescape(dos))
  local dbuf = vim.api.nvim_get_current_buf()
  assert_eq(vim.bo[dbuf].fileformat, "dos", "fileformat of dos.txt")
  check(vim.wait(5000, function()
    return vim.lsp.buf_is_attached(dbuf, client.id)
  end, 20), "dos.txt was not attached to the same kiln client")
  check_sync("open a CRLF file", dbuf)
  vim.cmd("normal! ggAö🙂")
  check_sync("edit a CRLF file", dbuf)
  vim.api.nvim_buf_set_lines(dbuf, 1, 1, false, { "mid ∑", "" })
  check_sync("insert lines in a CRLF file", dbuf)

  -- Saving and closing: the saved buffer is then read from disk, byte for byte.
  vim.cmd("buffer " .. buf)
  vim.cmd("silent write")
  local saved = table.concat(vim.fn.readfile(path, "b"), "\n")
  check_sync("write")
  vim.cmd("bwipeout " .. buf)
  check(vim.wait(5000, function()
    local r = kiln.request_sync(client, "kiln/read", { uri = uri }, REQUEST_MS)
    return r and r.result and r.result.identity.kind == "disk"
  end, 50), "kiln still reads the closed buffer, not the disk")
  local after_close = request("kiln/read", { uri = uri })
  assert_eq(after_close.text, saved, "kiln/read after :write and :bwipeout")

  info(string.format("ok: %d sync checks, neovim %s, %s, %s sync", n_checks, nvim_version, status.positionEncoding, effective_incremental and "incremental" or "full"))
end

local ran, err = xpcall(run, debug.traceback)
if not ran then
  fail(err)
  return
end
if not finished then
  finished = true
  -- Stop kiln politely so that it exits with shutdown/exit.
  for _, c in ipairs(vim.lsp.get_clients and vim.lsp.get_clients({ name = "kiln" }) or vim.lsp.get_active_clients()) do
    if c.name == "kiln" then
      vim.lsp.stop_client(c.id)
    end
  end
  vim.wait(2000, function()
    return #(vim.lsp.get_clients and vim.lsp.get_clients({ name = "kiln" }) or vim.lsp.get_active_clients()) == 0
  end, 20)
  cleanup()
  vim.cmd("qall!")
end
