return function(fn, arg, expired)
  local h, mask, count = debug.gethook()
  local function guard(ev, line)
    if expired() then error("step timed out (the function ran past its timeout)", 2) end
    if h then return h(ev, line) end
  end
  debug.sethook(guard, mask or "", (count and count > 0) and count or 100000)
  local ok, r = pcall(fn, arg)
  debug.sethook(h, mask, count)
  if not ok then error(r, 0) end
  return r
end
