-- code-review-assistant (layer 5): review a code sample on five aspects in parallel, propose
-- fixes for the findings, and write a review report.
--
-- Seven agents: five aspect reviewers (each names the worst function for its aspect and a severity),
-- a fixer (completes the first line of a fixed version of the top function) and a report writer (a
-- verdict). Prompts are few-shot completions, so small base models can answer them; Metrics reports
-- the model's answers and the fallbacks.
--
--   llmspell apps run code-review-assistant -- --output-dir ./out/review [--file path/to/code.py]

local OUT = (ARGS["output-dir"] or "llmspell-output/code-review-assistant"):gsub("/+$", "")

-- helpers -----------------------------------------------------------------------------------
local function trim(s) return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end
local function one_line(s) return trim((tostring(s or ""):gsub("%s+", " "))) end
local function clip(s, n)
  s = one_line(s)
  if #s > n then return s:sub(1, n - 3) .. "..." end
  return s
end
local function write(path, content)
  local r = Tool.invoke("file_operations", {operation = "write", path = path, input = content})
  if not r.success then error("could not write " .. path .. ": " .. tostring(r.text)) end
end
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Code:", "Verdict:") or copies
-- 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end

-- the code under review ---------------------------------------------------------------------------
local SAMPLE = [[
import sqlite3, os

def get_user(db_path, name):
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT * FROM users WHERE name = '" + name + "'").fetchall()
    return rows[0]

def total_size(paths):
    total = 0
    for p in paths:
        for q in paths:
            if p == q:
                total += os.path.getsize(p)
    return total

def parse_age(s):
    try:
        return int(s)
    except:
        return 0
]]
local code, source_name = SAMPLE, "sample.py"
if ARGS.file then
  local r = Tool.invoke("file_operations", {operation = "read", path = ARGS.file})
  code, source_name = r.text, ARGS.file:match("[^/]+$") or ARGS.file
end
write(OUT .. "/" .. source_name, code)

-- the functions the code defines (a reviewer's answer must name one of them) ------------------------
local FUNCTIONS, SOURCE_OF = {}, {}
do
  local current
  for line in (code .. "\n"):gmatch("([^\n]*)\n") do
    local name = line:match("^def ([%w_]+)%s*%(") or line:match("^function ([%w_.:]+)%s*%(")
    if name then current = name; FUNCTIONS[#FUNCTIONS + 1] = name; SOURCE_OF[name] = {} end
    if current then table.insert(SOURCE_OF[current], line) end
  end
end

-- agents: each prompt is a worked example; the user text ends where the answer starts --------------
local EXAMPLE_CODE = "import subprocess\n\ndef ping(host):\n    return subprocess.run(\"ping -c 1 \" + host, shell=True).returncode\n\n"
  .. "def tail(path):\n    lines = open(path).read().split(\"\\n\")\n    for line in lines:\n"
  .. "        if line in open(path).read().split(\"\\n\"):\n            last = line\n    return last\n"
local ASPECTS = {
  {key = "security", example = "ping (high)"},
  {key = "performance", example = "tail (medium)"},
  {key = "correctness", example = "ping (medium)"},
  {key = "style", example = "tail (low)"},
  {key = "maintainability", example = "tail (medium)"},
}
local FIX_EXAMPLES = "# security fix for ping\ndef ping(host):\n    return subprocess.run([\"ping\", \"-c\", \"1\", host]).returncode\n\n"
  .. "# maintainability fix for tail\ndef tail(path):\n    with open(path) as f:"
local VERDICTS = "Findings: security high, style low\nVerdict: request changes\n\n"
  .. "Findings: style low, performance low\nVerdict: approve\n\n"
  .. "Findings: correctness medium, maintainability low\nVerdict: request changes"
local function agent(name, examples, tokens)
  return Agent.builder():name(name):model("anthropic/claude-3-5-haiku-latest"):system_prompt(examples)
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
for _, a in ipairs(ASPECTS) do
  a.examples = "Code:\n" .. EXAMPLE_CODE .. "\nWorst function for " .. a.key .. ": " .. a.example
  agent(a.key .. "_reviewer", a.examples, 12)
end
local fixer = agent("fix_suggester", FIX_EXAMPLES, 40)
local reporter = agent("report_writer", VERDICTS, 6)

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (the parallel reviewers' agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

-- 1. five reviews in parallel ----------------------------------------------------------------------
local reviews = Workflow.builder():name("parallel_review"):parallel():max_concurrency(5)
  :error_strategy("continue")
for _, a in ipairs(ASPECTS) do
  reviews:add_step{name = a.key, type = "agent", agent = a.key .. "_reviewer",
                   input = "Code:\n{{code}}\nWorst function for " .. a.key .. ":"}
end
local rr = must(reviews:build():execute({code = code}), "parallel review")

local findings, ordered, named, rated = {}, {}, 0, 0
local RANK = {critical = 1, high = 2, medium = 3, low = 4, unrated = 5}
for _, a in ipairs(ASPECTS) do
  local line = answer_line((rr.outputs or {})[a.key], a.examples)
  local fn = line:match("^([%w_.:]+)")
  local severity = line:match("%((%a+)%)")
  severity = severity and RANK[severity:lower()] and severity:lower() or nil
  if not (fn and SOURCE_OF[fn]) then fn = nil end
  if fn then named = named + 1 end
  if severity then rated = rated + 1 end
  local f = {aspect = a.key, ["function"] = fn or "(none named)", severity = severity or "unrated",
             by = fn and "model" or "fallback", reply = clip(line, 120)}
  findings[#findings + 1] = f
  ordered[#ordered + 1] = f
end
table.sort(ordered, function(x, y)
  if RANK[x.severity] ~= RANK[y.severity] then return RANK[x.severity] < RANK[y.severity] end
  return x.aspect < y.aspect
end)
Metrics.set("functions_named_by_model", named)
Metrics.set("severities_by_model", rated)
Metrics.set("finding_fallbacks", #ASPECTS - named)

-- 2. a fix for the top finding (the fixer completes its first line), then the verdict ----------------
local top = ordered[1]
local fix_line, fix_fn = "", top["function"]
if SOURCE_OF[fix_fn] then
  local header = SOURCE_OF[fix_fn][1]
  local body = trim((fixer:execute({text = "# " .. top.aspect .. " fix for " .. fix_fn .. "\n" .. header .. "\n   "}).text))
  fix_line = answer_line(body, FIX_EXAMPLES)
  if fix_line ~= "" and not fix_line:find("[%(%)=:]") then fix_line = "" end -- not a line of code
end
Metrics.set("fix_lines_by_model", fix_line ~= "" and 1 or 0)
local fixes = fix_line ~= ""
  and string.format("First line of a fixed `%s` (%s, from the model; review it before use):\n\n```python\n%s\n    %s\n```",
                    fix_fn, top.aspect, SOURCE_OF[fix_fn][1], fix_line)
  or "(fallback) No fix from the model. Generic advice: use parameterized queries, catch specific exceptions, "
     .. "close resources with `with`."
local summary_list = {}
for _, f in ipairs(ordered) do summary_list[#summary_list + 1] = f.aspect .. " " .. f.severity end
local verdict = answer_line(reporter:execute({text = "Findings: " .. table.concat(summary_list, ", ") .. "\nVerdict:"}).text, VERDICTS)
verdict = (verdict:lower():find("^request changes") and "request changes") or (verdict:lower():find("^approve") and "approve") or nil
Metrics.set("verdict_by_model", verdict and 1 or 0)
completion:unregister() -- hooks outlive a kernel cell otherwise
local summary = string.format("%d aspects reviewed; top finding: %s in %s (%s). Verdict: %s.", #findings, top.aspect,
  top["function"], top.severity, verdict and (verdict .. " (model)") or "(fallback: none given)")

-- 3. files --------------------------------------------------------------------------------------------
local counts = {}
for _, f in ipairs(findings) do counts[f.severity] = (counts[f.severity] or 0) + 1 end
local md = {"# Code review: " .. source_name, "", "## Summary", "", summary, "", "## Findings", "",
            "| aspect | function | severity | decided by |", "|---|---|---|---|"}
for _, f in ipairs(ordered) do
  md[#md + 1] = string.format("| %s | %s | %s | %s |", f.aspect, f["function"], f.severity, f.by)
end
md[#md + 1] = ""
md[#md + 1] = "## Suggested fix"
md[#md + 1] = ""
md[#md + 1] = fixes
write(OUT .. "/review.md", table.concat(md, "\n") .. "\n")
write(OUT .. "/findings.json", JSON.stringify({file = source_name, findings = findings, severity_counts = counts,
                                               verdict = verdict or JSON.null}, {indent = 2}))
write(OUT .. "/fixes.md", "# Suggested fixes for " .. source_name .. "\n\n" .. fixes .. "\n")

local sev = {}
for _, s in ipairs({"critical", "high", "medium", "low", "unrated"}) do
  if counts[s] then sev[#sev + 1] = s .. " " .. counts[s] end
end
print("== Code review summary ==")
print(string.format("aspects reviewed: %d in parallel", #findings))
print("severities: " .. table.concat(sev, ", "))
print("top finding: " .. top.aspect .. " in " .. top["function"] .. " (" .. top.severity .. ")")
print("verdict: " .. (verdict or "(fallback: none given)"))
print("report written to " .. OUT .. "/review.md")
