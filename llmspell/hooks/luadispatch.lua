-- The Lua side of the hook registry (llmspell/hooks/luadispatch.py): per-point hook chains run
-- by one call from Python, ctx tables that load their data lazily by ticket, and the drain of
-- collected tickets. Called with (xpcall, fetch, errstring); returns
-- set_chain, fire, fire_range, drain.
local setmetatable, rawget, rawset, next, select, type = setmetatable, rawget, rawset, next, select, type
local collectgarbage = collectgarbage
local xpcall, fetch, errstring = ...
local chains, sizes, names = {}, {}, {}
local dead, ndead = {}, 0
-- The ctx holds its ticket under a private key; the ctx itself is finalizable (__gc is in its
-- metatable), so Lua reports the ticket when it collects the ctx, one table per call.
local AN = {}
local LAZY = {data = 0, component_id = 1, correlation_id = 2}

local function field(t, k)
  local ticket = rawget(t, AN)
  if ticket == nil then return nil end
  local w = LAZY[k]
  local v
  if w ~= nil then v = fetch(ticket, w)
  elseif k == "metadata" then v = {}
  else return nil end
  if v ~= nil then rawset(t, k, v) end
  return v
end
local ctx_mt = {__index = field}
ctx_mt.__pairs = function(t)
  local ticket = rawget(t, AN)
  if ticket ~= nil then
    for k in next, LAZY do if rawget(t, k) == nil then field(t, k) end end
    if rawget(t, "metadata") == nil then field(t, "metadata") end
    rawset(t, AN, nil)  -- every field is loaded: the data can go now
    ndead = ndead + 1; dead[ndead] = ticket
  end
  return next, t, nil
end
ctx_mt.__gc = function(t)
  local ticket = rawget(t, AN)
  if ticket ~= nil then ndead = ndead + 1; dead[ndead] = ticket end
end
local function new_ctx(ticket, p)
  return setmetatable({point = names[p], language = "lua", [AN] = ticket}, ctx_mt)
end

local kept
-- Which hook runs, per nesting depth (a hook may fire other points): read by the message handler.
local depth, cur_j, cur_ctx = 0, {}, {}
-- Hooks first..last of point p on ctx, called directly (one xpcall guards the whole call from Python):
-- (index, value) at the first hook that returns non-nil.
local function span(p, ctx, first, last)
  local chain = chains[p]
  local d = depth + 1
  depth = d
  cur_ctx[d] = ctx
  for j = first, last do
    cur_j[d] = j
    local r = chain[j](ctx)
    if r ~= nil then depth = d - 1; kept = ctx; return j, r end
  end
  depth = d - 1
end
-- Message handler: blame the hook running at the innermost depth (runs before the stack unwinds).
local function locate(e)
  local d = depth
  kept = cur_ctx[d]
  return {cur_j[d] or 0, errstring(e)}
end

local function guarded(d0, ok, j, v)
  depth = d0
  if ok then
    if j ~= nil then return j, true, v end
    return
  end
  if type(j) ~= "table" then return 0, false, errstring(j) end  -- the handler itself failed
  return j[1], false, j[2]
end
-- fire: the whole chain of point p on a new ctx. Returns (index, ok, value) at the first hook that
-- raised or returned a value (its ctx is kept for a resume), nothing when every hook returned nil.
local function fire(ticket, p)
  return guarded(depth, xpcall(span, locate, p, new_ctx(ticket, p), 1, sizes[p]))
end
-- fire_range: hooks first..last of point p; ticket 0 resumes on the kept ctx, otherwise a new ctx.
local function fire_range(ticket, p, first, last)
  local ctx = kept
  if ticket ~= 0 then ctx = new_ctx(ticket, p) end
  return guarded(depth, xpcall(span, locate, p, ctx, first, last))
end

local function set_chain(p, name, ...)
  names[p] = name
  sizes[p] = select("#", ...)
  chains[p] = {...}
end

local unpack = table.unpack
-- drain: up to 4096 collected tickets as results (one C-level conversion on the Python side).
local function drain(full)
  if full then collectgarbage() end
  if ndead == 0 then return end
  local n = ndead < 4096 and ndead or 4096
  local first = ndead - n + 1
  local out = {unpack(dead, first, ndead)}
  for i = first, ndead do dead[i] = nil end
  ndead = first - 1
  return unpack(out, 1, n)
end

return set_chain, fire, fire_range, drain
