-- Debug.stackTrace and stackTraceJson: plain Lua, so the stack they see is the script's own.
return function(frames, T)
  local function opts_of(a, b) if rawequal(a, T) then return b end return a end
  local function max_frames(o)
    if type(o) == "table" and type(o.max_depth) == "number" and o.max_depth > 0 then
      return math.floor(o.max_depth)
    end
    return 50
  end
  local function trace(a, b)
    local o = opts_of(a, b)
    local lines = {}
    for line in debug.traceback(nil, 2):gmatch("[^\n]+") do
      if not line:find('[string "<python>"]', 1, true) and not line:find("xpcall'", 1, true) then
        lines[#lines + 1] = line
      end
    end
    if type(o) == "table" and type(o.max_depth) == "number" then
      while #lines > o.max_depth + 1 do table.remove(lines) end
    end
    return table.concat(lines, "\n")
  end
  local function json(a, b)
    local r = frames(3, max_frames(opts_of(a, b)))
    return r
  end
  return trace, json
end
