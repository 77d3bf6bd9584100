local mark, tags = ...
local co_create, co_resume, co_status, co_yield = coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local state = setmetatable({}, { __mode = "k" })
local methods = {}

local function check(self, name)
  local s = state[self]
  if s == nil then error("Stream:" .. name .. " must be called with ':'", 3) end
  return s
end

local function step(s)
  if s.done then return false end
  local r = table.pack(co_resume(s.co))
  if not r[1] then
    s.done = true
    error(r[2], 0)
  end
  if co_status(s.co) == "dead" then
    s.done = true
    return false
  end
  return true, r[2]
end

function methods.next(self)
  local s = check(self, "next")
  local ok, v = step(s)
  if ok then return v end
  return nil
end

function methods.isDone(self)
  local s = check(self, "isDone")
  return s.done
end
methods.is_done = methods.isDone

function methods.collect(self)
  local s = check(self, "collect")
  local out = mark({})
  while true do
    local ok, v = step(s)
    if not ok then break end
    out[#out + 1] = v
  end
  return out
end

local mt = {
  __index = function(_, k)
    local m = methods[k]
    if m ~= nil then return m end
    error("unknown field '" .. tostring(k) .. "' on Stream", 2)
  end,
  __newindex = function(_, k) error("cannot set field '" .. tostring(k) .. "' on Stream (objects are read-only)", 2) end,
  __tostring = function(self) return "Stream(" .. (state[self].done and "done" or "active") .. ")" end,
  __name = "Stream",
  __metatable = "Stream",
}

local Streaming = {}
function Streaming.create(a, b)
  local fn = a
  if rawequal(a, Streaming) then fn = b end
  if type(fn) ~= "function" then
    error("Streaming.create: expected a function, got " .. type(fn), 2)
  end
  local o = setmetatable({}, mt)
  state[o] = { co = co_create(fn), done = false }
  tags[o] = "Stream"
  return o
end
function Streaming.yield(a, ...)
  if rawequal(a, Streaming) then return co_yield(...) end
  return co_yield(a, ...)
end
return Streaming
