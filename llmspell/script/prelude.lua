-- Lua-side support for the Python bridge. Loaded once per ScriptRuntime, before any global.
-- Returns a table of helpers; the bridge keeps it private (scripts never see it).
local M = {}
M.tags = setmetatable({}, { __mode = "k" })

local error, select, type, tostring, setmetatable, rawequal, pairs =
  error, select, type, tostring, setmetatable, rawequal, pairs
local math_type, floor, huge, fmt, concat = math.type, math.floor, math.huge, string.format, table.concat
local raw_pcall, raw_xpcall = pcall, xpcall
local raw_load = load  -- the runtime's own compiles (always mode "t"), before scripts' load is replaced
M.raw_xpcall = raw_xpcall  -- for dispatchers that must catch interrupts themselves (the hook registry)

-- A Python API function returns (ok, values...); errors become Lua errors at the caller's line.
-- `finish` is reached by a tail call, so level 2 is the script's frame; results keep their count.
local function finish(ok, ...)
  if ok then return ... end
  error((...), 2)
end

-- Each Python function comes in two forms: `pyfn` for calls from the main thread, `pyfn_co(co, ...)`
-- for calls from inside coroutine co (it re-binds Lua arguments to the main state first; see
-- Bridge.for_coroutines).
local co_running = coroutine.running

-- Call the form of a Python function that fits the running thread.
local function call_py(pyfn, pyfn_co, ...)
  local co, main = co_running()
  if main then return pyfn(...) end
  return pyfn_co(co, ...)
end

function M.wrap(pyfn, pyfn_co)
  return function(...)
    return finish(call_py(pyfn, pyfn_co, ...))
  end
end

-- Like wrap, but `Global:fn(...)` also works: a first argument that is the global itself is dropped.
function M.wrap_global(pyfn, pyfn_co, global)
  return function(first, ...)
    if rawequal(first, global) then return finish(call_py(pyfn, pyfn_co, ...)) end
    if first == nil and select("#", ...) == 0 then return finish(call_py(pyfn, pyfn_co)) end
    return finish(call_py(pyfn, pyfn_co, first, ...))
  end
end

-- An object class: methods are Python callables taking (handle, ...); `chain` names return self.
function M.class(kind, methods, methods_co, getfield, getfield_co, tostr, chain)
  local handles = setmetatable({}, { __mode = "k" })
  local wrapped = {}
  for name, pyfn_main in pairs(methods) do
    local pyfn_co = methods_co[name]
    local returns_self = chain[name] or false
    local label = kind .. ":" .. name
    wrapped[name] = function(self, ...)
      local h = handles[self]
      if h == nil then error(label .. " must be called with ':'", 2) end
      if returns_self then
        local ok, e = call_py(pyfn_main, pyfn_co, h, ...)
        if not ok then error(e, 2) end
        return self
      end
      return finish(call_py(pyfn_main, pyfn_co, h, ...))
    end
  end
  local mt = {
    __index = function(self, k)
      local m = wrapped[k]
      if m ~= nil then return m end
      local found, v = call_py(getfield, getfield_co, handles[self], k)
      if found then return v end
      error("unknown field '" .. tostring(k) .. "' on " .. kind, 2)
    end,
    __newindex = function(_, k)
      error("cannot set field '" .. tostring(k) .. "' on " .. kind .. " (objects are read-only)", 2)
    end,
    __tostring = function(self) return tostr(handles[self]) end,
    __name = kind,
    __metatable = kind,
  }
  local function new(h)
    local o = setmetatable({}, mt)
    handles[o] = h
    M.tags[o] = kind
    return o
  end
  local function handle_of(o) return handles[o] end
  return new, handle_of
end

-- Give a global table a dynamic field lookup (for example Tool.<name>).
function M.set_index(tbl, pyfn, pyfn_co)
  setmetatable(tbl, { __index = function(_, k)
    local v = call_py(pyfn, pyfn_co, k)
    return v
  end })
end

-- Identity: Python calls it through the main state to re-bind Lua values to that state.
function M.identity(...) return ... end

-- §1.5 value rendering shared by print and io.write.
local function render(v)
  local tv = type(v)
  if tv == "string" then return v end
  if tv == "number" then
    if math_type(v) == "integer" then return fmt("%d", v) end
    if v ~= v then return "nan" end
    if v == huge then return "inf" end
    if v == -huge then return "-inf" end
    if v == floor(v) and v > -9.2233720368547758e18 and v < 9.2233720368547758e18 then
      return fmt("%d", v)
    end
    return fmt("%.14g", v)
  end
  return tostring(v)
end
M.render = render

-- Install print, io.write, io.stdout, io.stderr on top of two Python sinks.
function M.install_output(out, err)
  local stdout, stderr = {}, {}
  local function writer(sink, file, fname)
    return function(...)
      local n = select("#", ...)
      local parts = {}
      for i = 1, n do
        local v = select(i, ...)
        local tv = type(v)
        if tv ~= "string" and tv ~= "number" then
          error(fmt("bad argument #%d to '%s' (string expected, got %s)", i, fname, tv), 2)
        end
        parts[i] = render(v)
      end
      if n > 0 then sink(concat(parts)) end
      return file
    end
  end
  local function file_methods(file, sink, name)
    local w = writer(sink, file, "write")
    local mt = {
      __index = {
        write = function(self, ...) return w(...) end,
        flush = function(self) return self end,
        setvbuf = function() return true end,
        close = function() return nil, "cannot close standard file" end,
        seek = function() return nil, "Illegal seek" end,
      },
      __tostring = function() return "file (" .. name .. ")" end,
      __name = "FILE*",
    }
    setmetatable(file, mt)
  end
  file_methods(stdout, out, "stdout")
  file_methods(stderr, err, "stderr")
  io.stdout, io.stderr = stdout, stderr
  local write_out = writer(out, stdout, "write")
  io.write = function(...) return write_out(...) end
  local real_output = io.output
  io.output = function(f)
    if f == nil then return stdout end
    return real_output(f)
  end
  print = function(...)
    local n = select("#", ...)
    if n == 0 then out("\n") return end
    local parts = {}
    for i = 1, n do parts[i] = render((select(i, ...))) end
    out(concat(parts, "\t") .. "\n")
  end
end

-- Compile a chunk under an exact chunk name (no source is prepended, so lines are exact).
function M.compile(code, chunkname, env)
  local f, e
  if env == nil then f, e = raw_load(code, chunkname, "t") else f, e = raw_load(code, chunkname, "t", env) end
  return f or false, e or false
end

-- Render any error value as a string (§1.7: error values are always strings).
local function errstring(e)
  if type(e) == "string" then return e end
  if type(e) == "table" then
    local mt = getmetatable(e)
    if type(mt) == "table" and mt.__tostring then return tostring(e) end
    local msg = rawget(e, "message") or rawget(e, "msg") or rawget(e, "error")
    if type(msg) == "string" then return msg end
    local keys = {}
    for k, v in pairs(e) do
      if #keys >= 8 then keys[#keys + 1] = "..." break end
      keys[#keys + 1] = tostring(k) .. "=" .. render(type(v) == "table" and "{...}" or v)
    end
    table.sort(keys)
    return "(error object is a table: {" .. concat(keys, ", ") .. "})"
  end
  if e == nil then return "nil" end
  return render(e)
end
M.errstring = errstring

-- Run a compiled chunk protected; returns true, n, results... or false, message, traceback.
function M.run(fn, ...)
  local tb, raw
  local function handler(e)
    if type(e) == "userdata" then raw = e end
    local msg = errstring(e)
    tb = debug.traceback(msg, 2)
    return msg
  end
  local res = table.pack(raw_xpcall(fn, handler, ...))
  if res[1] then return true, res.n - 1, table.unpack(res, 2, res.n) end
  return false, res[2], tb, raw
end

-- Interrupt support: a count hook that asks Python whether to stop, on every coroutine.
function M.install_interrupt(check, count)
  local sethook = debug.sethook
  local function hook()
    local why = check()
    if why then error(why, 2) end
  end
  M.interrupt_hook, M.interrupt_count = hook, count
  sethook(hook, "", count)
  -- A pending interrupt is not swallowed by pcall/xpcall (a retry loop around pcall must still stop).
  local function recheck(ok, ...)
    if not ok then
      local why = check()
      if why then error(why, 0) end
    end
    return ok, ...
  end
  pcall = function(f, ...) return recheck(raw_pcall(f, ...)) end
  xpcall = function(f, h, ...) return recheck(raw_xpcall(f, h, ...)) end
  M.recheck = recheck
  local co_create, co_resume = coroutine.create, coroutine.resume
  -- A Lua frame holds the coroutine while it runs: lupa empties the C frame of coroutine.resume (its
  -- only reference to an anonymous coroutine) whenever Python calls into Lua from inside it.
  local function keep(_, ...) return ... end
  local resume = co_resume  -- the name argument errors show
  -- For the debugger's stack view: the C function every resume runs, and the Lua frame that calls
  -- it holds the coroutine as `co` (a local here, an upvalue in wrap).
  M.raw_resume = co_resume
  -- For the debugger: while it steps, a resumed coroutine takes the resumer's hook (so a step enters it).
  local inherit = false
  function M.pass_hooks(on) inherit = on end
  local gethook = debug.gethook
  -- co takes the running thread's hook (the interrupt check; the debugger's while it is attached)
  local function pass_hook(co)
    if type(co) ~= "thread" then return end
    local h, mask, cnt = gethook()
    if h then sethook(co, h, mask, cnt) end
  end
  -- A coroutine that failed because of a pending interrupt or os.exit does not swallow it either.
  coroutine.resume = function(co, ...)
    if inherit then pass_hook(co) end
    return keep(co, recheck(resume(co, ...)))
  end
  coroutine.create = function(f)
    local co = co_create(f)
    pass_hook(co)
    return co
  end
  coroutine.wrap = function(f)
    local co = coroutine.create(f)
    return function(...)
      if inherit then pass_hook(co) end
      local r = table.pack(co_resume(co, ...))
      if r[1] then return table.unpack(r, 2, r.n) end
      error(r[2], 0)
    end
  end
end

-- Script-visible debug.sethook: a script may set its own hook, but never loses the interrupt check
-- (timeouts, Ctrl-C and kernel interrupts must hold). Hooks this file makes are passed through as is;
-- any other hook is wrapped so that count events also run the interrupt check, and removing the hook
-- puts the interrupt hook back.
function M.guard_sethook()
  local raw_sethook, gethook = debug.sethook, debug.gethook
  local own = setmetatable({}, { __mode = "k" })
  own[M.interrupt_hook] = true
  local check_hook, every = M.interrupt_hook, M.interrupt_count
  local function combined(f, mask, count)
    local wants_count = count ~= nil and count > 0
    local h = function(ev, line)
      if ev == "count" then
        check_hook()
        if not wants_count then return end
      end
      return f(ev, line)  -- a tail call: the hook's stack levels stay those Lua documents
    end
    own[h] = true
    local n = wants_count and math.min(count, every) or every
    return h, mask or "", n
  end
  debug.sethook = function(...)
    local th, f, mask, count
    if type((...)) == "thread" then th, f, mask, count = ... else f, mask, count = ... end
    if f == nil then
      f, mask, count = check_hook, "", every
    elseif type(f) ~= "function" then
      error("bad argument to 'sethook' (function expected)", 2)
    else
      if count ~= nil and math_type(count) ~= "integer" then count = floor(tonumber(count) or 0) end
      if not own[f] then
        f, mask, count = combined(f, mask, count)
      else
        mask = mask or ""
        if count == nil or count <= 0 then count = every end  -- else it never sees a count event
      end
    end
    if th ~= nil then return raw_sethook(th, f, mask, count) end
    return raw_sethook(f, mask, count)
  end
  M.raw_sethook, M.raw_gethook = raw_sethook, gethook
end

-- os.exit ends the script whatever the call stack: `exit(code)` (Python) records the code and
-- makes the interrupt check fail, so pcall, xpcall, coroutines and the count hook re-raise it.
function M.install_exit(exit)
  os.exit = function(code, close)
    error(exit(code), 0)
  end
end

-- Binary chunks (precompiled bytecode) are refused unless allowed: Lua does not verify bytecode,
-- so a malformed chunk can crash the process. load, loadfile, dofile and require read text only.
function M.text_only_loading()
  local raw_load, raw_loadfile = load, loadfile
  local function text_mode(mode)
    if mode == nil then return "t" end
    if type(mode) ~= "string" then return mode end
    if mode:find("b", 1, true) then
      if mode:find("t", 1, true) then return "t" end
      return nil
    end
    return mode
  end
  local function refuse(name)
    return nil, name .. ": binary chunks are not allowed (set [runtime] allow_binary_chunks = true to allow them)"
  end
  load = function(chunk, name, mode, ...)
    local m = text_mode(mode)
    if m == nil then return refuse("load") end
    if select("#", ...) > 0 then return raw_load(chunk, name, m, ...) end
    return raw_load(chunk, name, m)
  end
  loadfile = function(filename, mode, ...)
    local m = text_mode(mode)
    if m == nil then return refuse("loadfile") end
    if select("#", ...) > 0 then return raw_loadfile(filename, m, ...) end
    return raw_loadfile(filename, m)
  end
  dofile = function(filename)
    local f, e = raw_loadfile(filename, "t")
    if not f then error(e, 2) end
    return f()
  end
  -- require's Lua-file searcher (package.searchers[2]) loads with mode "bt" in C: replace it.
  local searchpath = package.searchpath
  package.searchers[2] = function(name)
    local path, err = searchpath(name, package.path)
    if not path then return err end
    local f, e = raw_loadfile(path, "t")
    if not f then error(fmt("error loading module '%s' from file '%s':\n\t%s", name, path, e), 2) end
    return f, path
  end
end

-- Key order for sorted listings (Utils.keys, Debug.dump): numbers, then strings, then booleans, then the rest.
do
  local rank = { number = 1, string = 2, boolean = 3 }
  function M.key_less(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return (rank[ta] or 9) < (rank[tb] or 9) end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end
end

-- Table identity for cycle detection from Python.
function M.addr(t) return fmt("%p", t) end

-- Tags on tables, read by the Python converter: "array" (JSON.array) or an object kind (Agent, ...).
function M.mark_array(t)
  if t == nil then t = {} end
  M.tags[t] = "array"
  return t
end

-- lupa always registers a `python` module; scripts must not see Python (§1.1).
python = nil
package.loaded.python = nil

return M
