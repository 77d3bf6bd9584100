-- Setup cell of the hook-overhead benchmark: 5 no-op Lua hooks on every hook point named in ARGS.
for _, point in ipairs(ARGS) do
  for _ = 1, 5 do Hook.register(point, function(ctx) end) end
end
print(#Hook.list())
