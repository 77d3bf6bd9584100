return function(expr)
  local src = expr:gsub("%$([%a_][%w_]*)", "%1")
  local cur = {}
  local env = setmetatable({}, {__index = function(_, k) return cur[k] end})
  local f, err = load("return (" .. src .. ")", "=condition", "t", env)
  if not f then return nil, err end
  return function(ctx)
    cur = {iteration = ctx.iteration, loop_index = ctx.loop_index, loop_value = ctx.loop_value,
           input = ctx.input, outputs = ctx.outputs, shared = ctx.shared, last_output = ctx.last_output,
           string = string, math = math, tonumber = tonumber, tostring = tostring, type = type}
    return f()
  end
end
