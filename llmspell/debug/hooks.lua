-- llmspell debugger hook. Breakpoint and step tests run here, in Lua; Python is called only to stop
-- (and every COUNT instructions, for interrupts, pause and breakpoint updates made while running).
--
-- Masks, chosen per function so hot code without breakpoints pays (almost) nothing:
--   ""    + count  no breakpoints, not stepping
--   "cr"  + count  breakpoints exist, but not in the running function (call/return pick the next mask)
--   "crl" + count  the running function's line range holds a breakpoint
--   "l"   + count  stepping
-- Loaded with `load(src, "=llmspell.debug")`; called with a table of Python callables:
--   py.norm(source) -> key|nil, py.hit(key, line, co) -> action..., py.poll() -> action...,
--   py.fn_hit(name, co) -> action..., py.stop_error(message, traceback) -> action...,
--   py.eval_check(started) -> reason|nil, py.now(), py.errstring(e), py.run_end(),
--   py.pass_hooks(on) and py.raw_resume (the prelude's) and returns the debugger table D.
local py = ...
local getinfo, getlocal, setlocal = debug.getinfo, debug.getlocal, debug.setlocal
-- The prelude's unwrapped sethook: scripts' debug.sethook wraps hooks to keep the interrupt check,
-- which this hook does itself (py.poll every COUNT instructions).
local sethook = py.raw_sethook or debug.sethook
local getupvalue, setupvalue = debug.getupvalue, debug.setupvalue
local running, costatus = coroutine.running, coroutine.status
local type, tostring, pairs, next, load, pcall, select, rawget, rawlen, setmetatable, getmetatable =
  type, tostring, pairs, next, load, pcall, select, rawget, rawlen, setmetatable, getmetatable
local pack, unpack, sort, concat = table.pack, table.unpack, table.sort, table.concat
local co_create = coroutine.create
local raw_xpcall = xpcall

local D = {}
local COUNT = 10007
-- Instructions the hook runs itself use up Lua's count too (with hooks off, so an expiry there is
-- lost): a one-line loop whose line hook does work could expire the count inside the hook every
-- time. Line events therefore also poll every LINE_POLL of them, and COUNT is prime so the expiry
-- cannot stay in phase with a loop.
local LINE_POLL = 4096
local line_ticks = 0
local bp_lines = {}     -- line -> true when any source has a breakpoint on that line
local bp = {}           -- source key -> { line -> true }
local any_bp = false
local norm_cache = {}   -- raw chunk source -> source key (false: not a debuggable source)
local fn_bp = setmetatable({}, { __mode = "k" })    -- function -> has a breakpoint on one of its lines
local co_mask = setmetatable({}, { __mode = "k" })  -- coroutine -> mask its hook has now
local bp_stack, bp_n = {}, 0  -- functions with breakpoints that are active on the stack, innermost last
local stack_co = nil    -- the thread whose stack bp_stack describes (an event from another rebuilds it)
local resync = false    -- rebuild bp_stack and the mask at the next event (set from Python)
local step_mode = nil   -- nil | "in" | "over" | "out"
local step_co, step_depth = nil, 0
local break_on_error = false
local fn_names = {}     -- function name -> true: function breakpoints (stop at a call of that name)
local any_fn = false
local fn_stop = nil     -- a function breakpoint's name: stop at the next line (the callee's first)
local step_ret = false  -- the stepping frame returned: stop before the caller's next instruction
local err_tb = nil      -- traceback of the last uncaught error, taken where it was raised
-- After a stop in a count event, Lua may call the line hook for the same instruction (the Lua code
-- run while stopped moved the thread's last traced pc): that one line event is skipped.
local skip_co, skip_fn = nil, nil
local in_error = false  -- stopped at an uncaught error: the walk shows the dead coroutine it came from
local hook, on_error

local main_co = nil     -- the main thread (set by D.install, which Python calls on it)
local pass_hooks = py.pass_hooks  -- prelude: resumed coroutines take the resumer's hook while on
local raw_resume = py.raw_resume  -- prelude: the C function every coroutine resume runs

-- Start or end a step; while one runs, coroutines resumed take the stepping thread's line hook.
local function set_step(mode)
  if (mode ~= nil) ~= (step_mode ~= nil) then pass_hooks(mode ~= nil) end
  step_mode = mode
end

-- Set thread th's mask and remember it (so call/return events skip needless sethooks).
local function set_thread_mask(th, m)
  co_mask[th] = m
  sethook(th, hook, m, COUNT)
end

local function set_mask(m) set_thread_mask(running(), m) end

-- Set the main thread's mask from inside a coroutine (a step that leaves the coroutine goes on in
-- the main thread; breakpoints changed here apply there too). Its next event picks the real one.
local function set_main_mask(m)
  if main_co ~= nil and running() ~= main_co and co_mask[main_co] ~= m then set_thread_mask(main_co, m) end
end

local function forget_masks()
  fn_bp = setmetatable({}, { __mode = "k" })
  co_mask = setmetatable({}, { __mode = "k" })
end

local function norm(src)
  local n = norm_cache[src]
  if n == nil then
    n = py.norm(src) or false
    norm_cache[src] = n
  end
  return n
end

-- Whether f has code on a line that holds a breakpoint (its own active lines, not nested functions').
local function fn_is_bp(f)
  local r = fn_bp[f]
  if r ~= nil then return r end
  r = false
  local info = getinfo(f, "SL")
  if info and info.what ~= "C" then
    local n = norm(info.source)
    local lines = n and bp[n]
    local active = info.activelines
    if lines and active then
      for l in pairs(lines) do
        if active[l] then r = true break end
      end
    end
  end
  fn_bp[f] = r
  return r
end

-- The mask while f runs: "crl" in breakpoint functions, "cr" below one (a return may lead back
-- into it), "c" when none is on the stack, "l" while stepping.
local function mask_of(f)
  if step_mode then return "lr" end
  if fn_stop then return "l" end
  if not any_bp then return any_fn and "c" or "" end
  if f and fn_is_bp(f) then return "crl" end
  if bp_n > 0 then return "cr" end
  return "c"
end

-- Rebuild bp_stack from the real stack; returns the function at `level` (as seen by the caller).
local function rebuild(level)
  bp_stack, bp_n, stack_co = {}, 0, running()
  local fs, n = {}, 0
  local l = level + 1
  while true do
    local i = getinfo(l, "f")
    if not i then break end
    n = n + 1; fs[n] = i.func
    l = l + 1
  end
  if any_bp then
    for k = n, 1, -1 do
      local f = fs[k]
      if f and fn_is_bp(f) then bp_n = bp_n + 1; bp_stack[bp_n] = f end
    end
  end
  return fs[1]
end

-- Depth of the function at `level` (as seen by the caller of stack_depth).
local function stack_depth(level)
  local l = level + 1
  while getinfo(l, "l") do l = l + 1 end
  return l - level - 1
end

-- Back to the interrupt hook alone (detach): no breakpoints, no step, no hooks passed on.
local function reset(interrupt_hook, interrupt_count)
  set_step(nil)
  step_ret, fn_stop, fn_names, any_fn = false, nil, {}, false
  bp_lines, bp, any_bp, break_on_error, bp_stack, bp_n = {}, {}, false, false, {}, 0
  forget_masks()
  sethook(interrupt_hook, "", interrupt_count)
  if main_co ~= nil and running() ~= main_co then sethook(main_co, interrupt_hook, "", interrupt_count) end
end

-- Apply what Python answered; called from the hook (level 1 apply, 2 hook, 3 the user function).
local function apply(act, a, b, c, d)
  if act == nil then return end
  step_ret = false
  if act == "sync" then
    bp_lines, bp, break_on_error = a, b, c
    fn_names = d or {}
    any_bp = next(bp_lines) ~= nil
    any_fn = next(fn_names) ~= nil
    forget_masks()
    set_main_mask(any_bp and "crl" or (any_fn and "c" or ""))
  elseif act == "terminate" then
    set_step(nil)
    error(a, 3)
  elseif act == "detach" then
    reset(a, b)
    return
  elseif act == "continue" then
    if step_mode ~= nil then
      set_step(nil)
      set_main_mask(any_bp and "crl" or (any_fn and "c" or ""))
    end
  else -- "in" | "over" | "out"
    set_step(act)
    step_co = running()
    step_depth = stack_depth(3)
    set_main_mask("lr")
  end
  set_mask(mask_of(rebuild(3)))
end

local function on_call(ev)
  if any_fn then
    local i = getinfo(3, "nS")
    if i.name and fn_names[i.name] and i.what ~= "C" and norm(i.source) then
      fn_stop = i.name
      return "l"
    end
  end
  local f = getinfo(3, "f").func
  if ev == "tail call" and bp_n > 0 and co_mask[running()] == "crl" then
    bp_stack[bp_n] = nil; bp_n = bp_n - 1  -- the breakpoint function's frame was replaced
  end
  if fn_is_bp(f) then bp_n = bp_n + 1; bp_stack[bp_n] = f end
  return mask_of(f)
end

local function on_return()
  if bp_n > 0 and getinfo(3, "f").func == bp_stack[bp_n] then
    bp_stack[bp_n] = nil; bp_n = bp_n - 1
  end
  local ci = getinfo(4, "f")
  local caller = ci and ci.func
  if caller and fn_is_bp(caller) then
    local i = bp_n
    while i > 0 and bp_stack[i] ~= caller do i = i - 1 end
    if i == 0 then
      bp_n = bp_n + 1; bp_stack[bp_n] = caller
    else
      for j = i + 1, bp_n do bp_stack[j] = nil end -- frames left by an error unwinding past them
      bp_n = i
    end
    return "crl"
  end
  return mask_of(nil)
end

hook = function(ev, line)
  if skip_co ~= nil then
    local same = ev == "line" and running() == skip_co and getinfo(2, "f").func == skip_fn
    skip_co, skip_fn = nil, nil
    if same then return end
  end
  if resync or (stack_co ~= running() and ev ~= "count") then
    resync = false
    if ev ~= "return" then set_mask(mask_of(rebuild(2))) else rebuild(2) end
  end
  if ev == "line" then
    if fn_stop then
      local name = fn_stop
      fn_stop = nil
      apply(py.fn_hit(name, (running())))
      if fn_stop == nil and step_mode == nil and co_mask[running()] == "l" then set_mask(mask_of(rebuild(2))) end
      return
    end
    local mode = step_mode
    if mode then
      local stop = mode == "in"
      if not stop then
        if running() == step_co then
          if mode == "over" then stop = getinfo(step_depth + 2, "l") == nil
          else stop = getinfo(step_depth + 1, "l") == nil end
        else -- another thread: the step's coroutine yielded, returned or died (or resumed this one)
          stop = step_co == nil or costatus(step_co) ~= "normal"
        end
      end
      if stop and not norm(getinfo(2, "S").source) then
        stop = false -- the prelude, this module, evaluate/condition chunks: step on through them
      end
      if stop then
        set_step(nil)
        apply(py.stop("step"))
        return
      end
    end
    if bp_lines[line] then
      local n = norm(getinfo(2, "S").source)
      local lines = n and bp[n]
      if lines and lines[line] then apply(py.hit(n, line, (running()))); return end
    end
    line_ticks = line_ticks + 1
    if line_ticks >= LINE_POLL then
      line_ticks = 0
      apply(py.poll())
    end
  elseif ev == "count" then
    if step_ret then -- the frame a step started in returned: stop in its caller, mid-line if need be
      step_ret = false
      if step_mode and running() == step_co and stack_depth(2) < step_depth
          and norm(getinfo(2, "S").source) then
        set_step(nil)
        local co, fn = running(), getinfo(2, "f").func
        apply(py.stop("step"))
        skip_co, skip_fn = co, fn
        return
      end
      set_mask(step_mode and "lr" or mask_of(nil))
      return
    end
    apply(py.poll())
  elseif step_mode ~= nil then -- stepping: every thread the step reaches traces lines
    if ev == "return" and running() == step_co and stack_depth(2) <= step_depth then
      -- a caller on the same line (`return n * f(n - 1)`) gets no new line event: the count hook
      -- stops before its next instruction instead
      step_ret = true
      co_mask[running()] = "lr"
      sethook(running(), hook, "lr", 1)
    elseif co_mask[running()] ~= "lr" then set_mask("lr") end
  else -- call, tail call, return: pick the mask of the function that runs next
    local m
    if ev == "return" then m = on_return() else m = on_call(ev) end
    local co = running()
    if co_mask[co] ~= m then set_thread_mask(co, m) end
  end
end
D.hook = hook

-- Called from Python (idle, or from the interrupt check of a running chunk): watch everything
-- until the next event rebuilds the real state.
local function provisional()
  resync = true
  set_mask(step_mode and "lr" or (any_bp and "crl" or (any_fn and "c" or "")))
end

-- Install on the running thread (the main thread when called from Python).
function D.install(count)
  COUNT = count or COUNT
  main_co = running()
  provisional()
end

function D.uninstall(interrupt_hook, interrupt_count)
  reset(interrupt_hook, interrupt_count)
end

function D.sync(lines, map, err, fns)
  bp_lines, bp, break_on_error = lines, map, err and true or false
  fn_names = fns or {}
  any_fn = next(fn_names) ~= nil
  any_bp = next(bp_lines) ~= nil
  forget_masks()
  provisional()
end

-- Step into the next line that runs (stopOnEntry, or a pause requested while idle).
function D.step_in()
  set_step("in"); step_co = nil
  set_mask("lr")
end

function D.clear_step()
  set_step(nil)
  provisional()
end

-- Every chunk runs through the prelude's M.run: a step over/out that leaves the chunk ends there.
-- "uncaught" exception breakpoints: stop where the error was raised, with the stack intact.
-- A coroutine.wrap function re-raises its coroutine's error in the resumer: the dead coroutine
-- (the wrap function's upvalue `co`; its stack is kept) is shown above the resumer's frames.
local function dead_co_of(f)
  for k = 1, 255 do
    local n, u = getupvalue(f, k)
    if n == nil then return nil end
    if n == "co" and type(u) == "thread" and costatus(u) == "dead" then return u end
  end
end

-- The traceback of an uncaught error from level `level` of the running thread down to the
-- chunk's own frames: the debugger's wrapper and the runtime's protected call are cut off.
local function user_traceback(msg, level)
  local parts = {}
  for l = level + 1, level + 6 do
    local i = getinfo(l, "fS")
    if not i then break end
    local dead = i.what ~= "C" and dead_co_of(i.func)
    if dead then
      parts[#parts + 1] = debug.traceback(dead, msg)
      msg = "(coroutine resumed from)"
      break
    end
  end
  parts[#parts + 1] = debug.traceback(msg, level + 1)
  local out = {}
  for line in concat(parts, "\n"):gmatch("[^\n]+") do
    if line:find("llmspell.debug:", 1, true) then break end
    if not line:find("raw_xpcall", 1, true) then out[#out + 1] = line end
  end
  return concat(out, "\n")
end

on_error = function(e)
  if break_on_error and type(e) ~= "userdata" then -- userdata: os.exit or an interrupt from Python
    local msg = py.errstring(e)
    err_tb = user_traceback(msg, 2)
    in_error = true
    local act, a, b = py.stop_error(msg, err_tb)
    in_error = false
    if act == "detach" then reset(a, b) end
  end
  return e
end

function D.wrap_run(orig)
  return function(fn, ...)
    local target = fn
    err_tb = nil
    local fi = type(fn) == "function" and getinfo(fn, "S")
    if fi then norm(fi.source) end -- a loaded source (`source` requests may read it)
    if break_on_error then
      target = function(...)
        local res = pack(raw_xpcall(fn, on_error, ...))
        if res[1] then return unpack(res, 2, res.n) end
        error(res[2], 0)
      end
    end
    local r = pack(orig(target, ...))
    if r[1] == false and err_tb ~= nil then r[3] = err_tb end -- the user's frames, not the re-raise's
    err_tb = nil
    if step_mode == "over" or step_mode == "out" then
      set_step(nil)
      provisional()
    end
    py.run_end()
    return unpack(r, 1, r.n)
  end
end

-- ---------------------------------------------------------------- inspection (while stopped)
-- Level of the first frame the user sees in thread co, relative to the caller of find (helpers
-- below): the frame above the hook when co is stopped in it, else (the main thread, below a stopped
-- coroutine) the top of co's stack past this module's own frames.
local function find(co)
  local same = co == running()
  local top
  for l = 0, 10000 do
    local i = getinfo(co, l, "fS")
    if not i then break end
    if i.func == hook or i.func == on_error then return l + 1 - (same and 1 or 0) end
    if top == nil and (not same or (l > 0 and i.source ~= "=llmspell.debug")) then top = l end
  end
  return top and top - (same and 1 or 0)
end

-- Frames name their thread by a number: lupa hands Python a coroutine that waits in resume with
-- one stack slot as if it were unstarted (the value in that slot instead of the thread).
local frame_threads = {}
local function thread_of(t)
  if type(t) == "number" then return frame_threads[t] end
  return t or main_co
end

-- The coroutine that the resume call at level lvl of thread th (as its caller counts) runs: the
-- prelude's caller of that C function holds it as `co` (a parameter of coroutine.resume, an
-- upvalue of a wrap function).
local function resumed_at(th, lvl)
  if th == running() then lvl = lvl + 1 end  -- this function is one level deeper than its caller
  local name, v = getlocal(th, lvl + 1, 1)
  if name == "co" and type(v) == "thread" then return v end
  local i = getinfo(th, lvl + 1, "f")
  if not i then return nil end
  for k = 1, 255 do
    local n, u = getupvalue(i.func, k)
    if n == nil then return nil end
    if n == "co" and type(u) == "thread" then return u end
  end
end

-- Every frame of the program, innermost first, from the main thread down: at each resume the
-- resumed coroutine's frames come first, then `visit(nil)` for the resume itself. Frames of the
-- main thread above a resume are Lua code that Python called back while that coroutine waited in
-- an API call (a function step, a hook): they are the innermost. visit(th, j, info) gets each frame
-- (j: its level above the thread's base, as D.locals counts); a true result ends the walk.
local function walk(th, visit, seen)
  local base = find(th)
  if not base then return end
  seen[th] = true
  local j = 0
  while true do
    local i = getinfo(th, base + j, "nSlf")
    if not i then return end
    if i.func == raw_resume then
      local sub = resumed_at(th, base + j)
      if sub ~= nil and not seen[sub] and costatus(sub) == "normal" then
        if walk(sub, visit, seen) or visit(nil) then return true end
      end
    elseif in_error and i.what ~= "C" then
      local sub = dead_co_of(i.func)
      if sub ~= nil and not seen[sub] then
        if walk(sub, visit, seen) or visit(nil) then return true end
      end
    end
    if visit(th, j, i) then return true end
    j = j + 1
  end
end

-- Every frame above the hook, innermost first, with a "resume" marker below each resumed
-- coroutine's frames (see walk):
-- { {j, what, source, currentline, name, linedefined, lastlinedefined, thread number}, ... }
function D.frames()
  frame_threads = {}
  local out, number = {}, {}
  walk(main_co or running(), function(th, j, i)
    if th == nil then
      out[#out + 1] = { -1, "resume", "", 0, false, 0, 0, 0 }
      return
    end
    local t = number[th]
    if t == nil then
      t = #frame_threads + 1
      frame_threads[t], number[th] = th, t
    end
    out[#out + 1] = { j, i.what, i.source, i.currentline, i.name or false, i.linedefined, i.lastlinedefined, t }
  end, {})
  return out
end

-- A step asked for at a stop made while the script waits in a blocking API call (no hook on the
-- stack): the step counts from the innermost Lua function, which made the call.
function D.wait_step(mode)
  local co, user
  walk(main_co or running(), function(th, j, i)
    if th ~= nil and i.what ~= "C" and norm(i.source) then co, user = th, j; return true end
  end, {})
  if co == nil then return end
  local base, l = find(co), user
  while getinfo(co, base + l, "S") do l = l + 1 end
  set_step(mode); step_co, step_depth = co, l - user
  set_thread_mask(co, "lr")
  if co ~= main_co then set_thread_mask(main_co, "lr") end
end

function D.locals(co, j)
  co = thread_of(co)
  local lvl = find(co) + j
  local names, vals, idx, n = {}, {}, {}, 0
  local i = 1
  while true do
    local name, v = getlocal(co, lvl, i)
    if name == nil then break end
    if name:sub(1, 1) ~= "(" then
      n = n + 1; names[n], vals[n], idx[n] = name, v, i
    end
    i = i + 1
  end
  i = -1
  while true do
    local name, v = getlocal(co, lvl, i)
    if name == nil then break end
    n = n + 1; names[n], vals[n], idx[n] = "...[" .. (-i) .. "]", v, i
    i = i - 1
  end
  return n, names, vals, idx
end

function D.frame_func(co, j)
  co = thread_of(co)
  local i = getinfo(co, find(co) + j, "f")
  return i and i.func
end

function D.upvalues(func)
  local names, vals, n = {}, {}, 0
  if type(func) ~= "function" then return 0, names, vals end
  local i = 1
  while true do
    local name, v = getupvalue(func, i)
    if name == nil then break end
    n = n + 1; names[n], vals[n] = name ~= "" and name or ("?" .. i), v
    i = i + 1
  end
  return n, names, vals
end

function D.setlocal(co, j, idx, v)
  co = thread_of(co)
  return setlocal(co, find(co) + j, idx, v)
end

function D.setupvalue(func, idx, v) return setupvalue(func, idx, v) end

-- Compile `code` as an expression (or, failing that, a statement block) in frame j of co
-- (co == nil: globals only). Returns true, n, values... or false, message.
function D.eval(co, j, code, guarded)
  local env, lvl, func, locs, vals, has, dirty
  if co ~= nil then
    co = thread_of(co)
    lvl = find(co)
    if lvl then
      lvl = lvl + j
      local fi = getinfo(co, lvl, "f")
      func = fi and fi.func
    end
  end
  local genv = _G
  if lvl then
    locs, vals, has, dirty = {}, {}, {}, {}
    local i = 1
    while true do
      local name, v = getlocal(co, lvl, i)
      if name == nil then break end
      if name:sub(1, 1) ~= "(" then locs[name], vals[name], has[name] = i, v, true end
      i = i + 1
    end
    local ups, upv = {}, {}
    if func then
      i = 1
      while true do
        local name, v = getupvalue(func, i)
        if name == nil then break end
        if name == "_ENV" then genv = v elseif not has[name] then ups[name], upv[name] = i, v end
        i = i + 1
      end
    end
    env = setmetatable({}, {
      __index = function(_, k)
        if has[k] then return vals[k] end
        if ups[k] then return upv[k] end
        return genv[k]
      end,
      __newindex = function(_, k, v)
        if has[k] then vals[k] = v; dirty[k] = true
        elseif ups[k] then upv[k] = v; setupvalue(func, ups[k], v)
        else genv[k] = v end
      end,
    })
  else
    env = genv
  end
  local f, err = load("return " .. code, "=(eval)", "t", env)
  if not f then
    local f2, err2 = load(code, "=(eval)", "t", env)
    if not f2 then return false, err2 or err end
    f = f2
  end
  local r
  if guarded then
    -- its own coroutine, so its own count hook (hooks are off inside this one): cancellable
    local started = py.now()
    local ev = co_create(function() return f() end)
    sethook(ev, function()
      local why = py.eval_check(started)
      if why then error(why, 0) end
    end, "", 1000)
    r = pack(raw_resume(ev))
  else
    r = pack(pcall(f))
  end
  if dirty then
    for k in pairs(dirty) do setlocal(co, lvl, locs[k], vals[k]) end
  end
  if not r[1] then return false, tostring(r[2]) end
  return true, r.n - 1, unpack(r, 2, r.n)
end

-- Syntax check of a condition (no frame needed): nil when fine, else the message.
function D.check(code)
  local f, err = load("return " .. code, "=(condition)", "t")
  if f then return nil end
  return err
end

local ORDER = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (ORDER[ta] or 9) < (ORDER[tb] or 9) or
    ((ORDER[ta] or 9) == (ORDER[tb] or 9) and ta < tb) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- Keys of t in display order: the array part 1..n first, then the other keys sorted.
function D.tkeys(t)
  local n = rawlen(t)
  local keys, k = {}, 0
  for i = 1, n do k = k + 1; keys[k] = i end
  local rest, r = {}, 0
  for key in next, t do
    if not (math.type(key) == "integer" and key >= 1 and key <= n) then r = r + 1; rest[r] = key end
  end
  sort(rest, key_less)
  for i = 1, r do keys[k + i] = rest[i] end
  return k + r, n, keys
end

function D.tget(t, key) return rawget(t, key) end

function D.tset(t, key, v) t[key] = v end

function D.tostr(v)
  local ok, s = pcall(tostring, v)
  if ok then return s end
  return type(v)
end

function D.tcount(t)
  local c = 0
  for _ in next, t do c = c + 1 end
  return c, rawlen(t)
end

-- Debug-console completion: the names visible in frame j of co (co == nil: globals), or, after a
-- path `a.b.`, the keys of that table (`a:` lists only its functions). Returns { {name, type}, ... }.
function D.complete(co, j, parts, methods)
  local names, out = {}, {}
  local function add(k, v)
    if type(k) == "string" and k:match("^[%a_][%w_]*$") and not names[k] then
      names[k] = true
      out[#out + 1] = { k, type(v) }
    end
  end
  local scope = {}
  local lvl, func
  if co ~= nil then
    co = thread_of(co)
    lvl = find(co)
    if lvl then
      lvl = lvl + j
      local i = 1
      while true do
        local name, v = getlocal(co, lvl, i)
        if name == nil then break end
        if name:sub(1, 1) ~= "(" then scope[name] = v end
        i = i + 1
      end
      local fi = getinfo(co, lvl, "f")
      func = fi and fi.func
      if func then
        i = 1
        while true do
          local name, v = getupvalue(func, i)
          if name == nil then break end
          if scope[name] == nil and name ~= "_ENV" then scope[name] = v end
          i = i + 1
        end
      end
    end
  end
  local function keys_of(t, only_fn)
    local seen = 0
    while type(t) == "table" and seen < 5 do
      for k, v in next, t do
        if not only_fn or type(v) == "function" then add(k, v) end
      end
      local mt = getmetatable(t)
      t = type(mt) == "table" and rawget(mt, "__index") or nil
      seen = seen + 1
    end
  end
  if #parts == 0 then
    for k, v in pairs(scope) do add(k, v) end
    keys_of(_G, false)
    return out
  end
  local v = scope[parts[1]]
  if v == nil then v = rawget(_G, parts[1]) end
  for i = 2, #parts do
    if type(v) ~= "table" then return out end
    local ok, nv = pcall(function() return v[parts[i]] end)
    if not ok then return out end
    v = nv
  end
  keys_of(v, methods)
  return out
end

return D
