local mark, key_less = ...
local type, tostring, pairs, sort, concat, fmt, rep, getinfo =
  type, tostring, pairs, table.sort, table.concat, string.format, string.rep, debug.getinfo
local H = {}


local function scalar(v, show_types)
  local tv = type(v)
  local s
  if tv == "string" then s = fmt("%q", v):gsub("\\\n", "\\n")
  elseif tv == "number" and math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
    s = fmt("%.1f", v)
  else s = tostring(v) end
  if show_types then
    local t = tv == "number" and math.type(v) or tv
    return s .. " --[[" .. t .. "]]"
  end
  return s
end

local function keystr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  return "[" .. scalar(k, false) .. "]"
end

-- dump(v, max_depth, indent, max_items, show_types) -> readable Lua literal, sorted keys, cycles marked
function H.dump(v, max_depth, indent, max_items, show_types)
  local seen = {}
  local function go(x, depth)
    if type(x) ~= "table" then return scalar(x, show_types) end
    local mt = getmetatable(x)
    if mt ~= nil and type(mt) ~= "table" or (type(mt) == "table" and mt.__tostring) then
      return tostring(x)
    end
    if seen[x] then return "<cycle: " .. tostring(x) .. ">" end
    if depth >= max_depth then return "{...}" end
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    if #keys == 0 then return "{}" end
    seen[x] = true
    sort(keys, key_less)
    local n = #x
    local parts = {}
    for i, k in ipairs(keys) do
      if i > max_items then parts[#parts + 1] = "... (" .. (#keys - max_items) .. " more)" break end
      local val = go(x[k], depth + 1)
      if math.type(k) == "integer" and k >= 1 and k <= n then parts[#parts + 1] = val
      else parts[#parts + 1] = keystr(k) .. " = " .. val end
    end
    seen[x] = nil
    if indent <= 0 then return "{ " .. concat(parts, ", ") .. " }" end
    local pad, inner = rep(" ", indent * depth), rep(" ", indent * (depth + 1))
    return "{\n" .. inner .. concat(parts, ",\n" .. inner) .. ",\n" .. pad .. "}"
  end
  return go(v, 0)
end

-- frames(level, max) -> array of {source, line, name} for the caller's stack
function H.frames(level, max)
  local out = mark({})
  local lvl = level
  while #out < max do
    local info = getinfo(lvl, "Sln")
    if not info then break end
    if info.what ~= "C" and info.short_src ~= '[string "<python>"]' then
      out[#out + 1] = { source = info.short_src, line = info.currentline, name = info.name or (info.what == "main" and "main chunk" or "?") }
    end
    lvl = lvl + 1
  end
  return out
end

local collections = 0
local real_collect = collectgarbage
local function counted(opt, ...)
  if opt == nil or opt == "collect" then collections = collections + 1 end
  return real_collect(opt, ...)
end
collectgarbage = counted
function H.heap()
  return math.floor(real_collect("count") * 1024), collections
end
return H
