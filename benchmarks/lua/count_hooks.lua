-- Check cell of the hook-overhead benchmark: one more hook on every point named in ARGS counts
-- the firings (HOOK_FIRINGS), so the benchmark can show the app runs really fired the points.
HOOK_FIRINGS = {}
for _, point in ipairs(ARGS) do
  Hook.register(point, function(ctx) HOOK_FIRINGS[ctx.point] = (HOOK_FIRINGS[ctx.point] or 0) + 1 end, "lowest")
end
