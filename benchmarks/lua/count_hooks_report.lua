-- Prints the total of HOOK_FIRINGS and how many distinct points fired (see count_hooks.lua).
local total, points = 0, 0
for _, n in pairs(HOOK_FIRINGS) do total = total + n; points = points + 1 end
print(total, points)
