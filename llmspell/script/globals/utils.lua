local mark, tags, key_less = ...
local type, pairs, next, tostring, setmetatable, getmetatable, rawequal =
  type, pairs, next, tostring, setmetatable, getmetatable, rawequal
local sfind, ssub, smatch, sort = string.find, string.sub, string.match, table.sort
local H = {}

local function need(fname, v, want, argn)
  if type(v) ~= want then
    error(string.format("Utils.%s: argument #%d must be a %s, got %s", fname, argn, want, type(v)), 3)
  end
end

function H.split(s, sep, plain)
  need("split", s, "string", 1)
  local out = mark({})
  if sep == nil then
    for w in s:gmatch("%S+") do out[#out + 1] = w end
    return out
  end
  need("split", sep, "string", 2)
  if sep == "" then error("Utils.split: separator must not be empty (omit it to split on whitespace)", 2) end
  if plain == nil then plain = true end
  local init = 1
  while true do
    local a, b = sfind(s, sep, init, plain)
    if not a or b < a then break end
    out[#out + 1] = ssub(s, init, a - 1)
    init = b + 1
  end
  out[#out + 1] = ssub(s, init)
  return out
end

function H.trim(s) need("trim", s, "string", 1) return (smatch(s, "^%s*(.-)%s*$")) end
function H.starts_with(s, p)
  need("starts_with", s, "string", 1) need("starts_with", p, "string", 2)
  return ssub(s, 1, #p) == p
end
function H.ends_with(s, p)
  need("ends_with", s, "string", 1) need("ends_with", p, "string", 2)
  return p == "" or ssub(s, -#p) == p
end


local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks, key_less)
  return ks
end

function H.keys(t) need("keys", t, "table", 1) return mark(sorted_keys(t)) end
function H.values(t)
  need("values", t, "table", 1)
  local out = mark({})
  for i, k in ipairs(sorted_keys(t)) do out[i] = t[k] end
  return out
end
function H.len(t)
  need("len", t, "table", 1)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end
function H.is_empty(t)
  if t == nil then return true end
  if type(t) == "string" then return t == "" end
  need("is_empty", t, "table", 1)
  return next(t) == nil
end

local function copy(v, seen)
  if type(v) ~= "table" then return v end
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[copy(k, seen)] = copy(x, seen) end
  if tags[v] == "array" then tags[out] = "array" end
  local mt = getmetatable(v)
  if type(mt) == "table" then setmetatable(out, mt) end
  return out
end
function H.deep_copy(v) return copy(v, {}) end

function H.merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t ~= nil then
      if type(t) ~= "table" then
        error(string.format("Utils.merge: argument #%d must be a table, got %s", i, type(t)), 2)
      end
      for k, v in pairs(t) do out[k] = v end
    end
  end
  return out
end

return H
