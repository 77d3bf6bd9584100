-- The Lua shell's helpers (llmspell/script/shell.py): completion, inspection and expression cells.
-- Compiled once per runtime under the chunk name "=llmspell.shell"; returns a table of functions.
local M = {}
local type, next, pcall, tostring, rawget = type, next, pcall, tostring, rawget
local sort, concat, sub = table.sort, table.concat, string.sub
local getmt, getupvalue = debug.getmetatable, debug.getupvalue

local function resolve(path)
  local v = _G
  if path == "" then return v end
  for part in path:gmatch("[^.:]+") do
    local tv = type(v)
    if tv ~= "table" and tv ~= "userdata" and tv ~= "string" then return nil end
    local ok, x = pcall(function() return v[part] end)
    if not ok then return nil end
    v = x
  end
  return v
end

local function add_keys(t, prefix, only_funcs, out, seen, depth)
  if depth > 4 then return end
  if type(t) == "table" then
    for k, v in next, t do
      if type(k) == "string" and not seen[k] and k:find("^[%a_][%w_]*$") and sub(k, 1, #prefix) == prefix
         and (not only_funcs or type(v) == "function") then
        seen[k] = true
        out[#out + 1] = k
      end
    end
  end
  local mt = getmt(t)
  if type(mt) ~= "table" then return end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then
    add_keys(idx, prefix, only_funcs, out, seen, depth + 1)
  elseif type(idx) == "function" then
    -- API objects (prelude M.class) keep their methods in the upvalue `wrapped`.
    for i = 1, 16 do
      local name, val = getupvalue(idx, i)
      if name == nil then break end
      if name == "wrapped" and type(val) == "table" then add_keys(val, prefix, false, out, seen, depth + 1) end
    end
  end
end

function M.complete(path, prefix, only_funcs)
  local t = resolve(path)
  if t == nil then return "" end
  local out, seen = {}, {}
  add_keys(t, prefix, only_funcs, out, seen, 0)
  sort(out)
  return concat(out, "\n")
end

function M.describe(path)
  local v = resolve(path)
  if v == nil then return nil end
  local ok, s = pcall(tostring, v)
  return type(v) .. "\n" .. (ok and s or "?")
end

-- Expression cells: results that are only io.stdout/io.stderr (from io.write(...)) are not shown.
local stdout, stderr, select = io.stdout, io.stderr, select
local function drop_files(...)
  local n = select("#", ...)
  for i = 1, n do
    local v = select(i, ...)
    if v ~= stdout and v ~= stderr then return ... end
  end
end
function M.expression(fn)
  return function(...) return drop_files(fn(...)) end
end

return M
