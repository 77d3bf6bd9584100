-- content-creator (layer 3): plan, write and review a short article; edit it only when the review
-- scores it below a threshold (a conditional workflow).
--
-- Four agents: planner, writer, reviewer, editor.
--
--   llmspell apps run content-creator -- --output-dir ./out/content --topic "tiny language models" --threshold 7

local OUT = (ARGS["output-dir"] or "llmspell-output/content-creator"):gsub("/+$", "")
local TOPIC = ARGS.topic or "why small language models matter"
local THRESHOLD = tonumber(ARGS.threshold) or 7
local MODEL = ARGS.model or "openai/gpt-4o-mini"

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
-- A 1-10 score from free text: "8/10", "Score: 7", "seven" ...; nil when there is none.
local WORDS = {one = 1, two = 2, three = 3, four = 4, five = 5, six = 6, seven = 7, eight = 8, nine = 9, ten = 10}
local function score_of(text)
  local low = tostring(text or ""):lower()
  local n = low:match("(%d+)%s*/%s*10") or low:match("score%D-(%d+)") or low:match("(%d+)")
  n = tonumber(n)
  if n and n >= 1 and n <= 10 then return math.floor(n) end
  for w, v in pairs(WORDS) do if low:find("%f[%a]" .. w .. "%f[%A]") then return v end end
  return nil
end

-- agents --------------------------------------------------------------------------------------
local function agent(name, prompt, tokens)
  return Agent.builder():name(name):model(MODEL):system_prompt(prompt)
    :temperature(0.4):max_tokens(tokens):max_conversation_length(0):build()
end
agent("content_planner", "You plan short articles. Reply with a title line and three bullet points.", 96)
agent("content_writer", "You write clear, friendly articles of about 120 words.", 160)
agent("content_reviewer", "You review articles. Start with 'Score: N/10', then give one sentence of feedback.", 64)
agent("content_editor", "You improve articles using reviewer feedback. Reply with the improved article only.", 160)

-- 1. plan -> draft -> review ---------------------------------------------------------------------
local pipeline = Workflow.builder():name("plan_write_review"):sequential()
  :add_step{name = "outline", type = "agent", agent = "content_planner", input = "Plan an article about {{topic}}."}
  :add_step{name = "draft", type = "agent", agent = "content_writer",
            input = "Write the article about {{topic}} from this plan:\n{{outline}}"}
  :add_step{name = "review", type = "agent", agent = "content_reviewer", input = "Review this article:\n{{draft}}"}
  :build()
local r = must(pipeline:execute({topic = TOPIC}), "plan/write/review")
local outline = trim(r.outputs.outline)
local draft = trim(r.outputs.draft)
local review = trim(r.outputs.review)
if outline == "" then outline = "# " .. TOPIC .. "\n- why it matters\n- how it works\n- what to do next" end
if draft == "" then draft = "(the writer returned nothing; the outline stands in)\n\n" .. outline end
local score = score_of(review)
local scored = score ~= nil
score = score or 5 -- no score found: treat as middling, which sends the draft to the editor
if review == "" then review = "(no review text)" end

-- 2. conditional: edit only when the score is below the threshold ---------------------------------
local needs_edit = score < THRESHOLD and "yes" or "no"
local gate = Workflow.builder():name("quality_gate"):conditional()
  :condition({type = "shared_data_equals", key = "needs_edit", value = "yes"})
  :add_then_step{name = "edited", type = "agent", agent = "content_editor",
                 input = "Feedback: {{feedback}}\nImprove this article:\n{{draft}}"}
  :add_else_step{name = "kept", type = "function", fn = function(ctx)
                   return (type(ctx.input) == "table" and ctx.input.draft) or draft
                 end}
  :build()
local g = must(gate:execute({needs_edit = needs_edit, draft = draft, feedback = clip(review, 200)}), "quality gate")
local branch = (g.metadata and g.metadata.extra and g.metadata.extra.selected_branch) or "?"
local final = trim(g.text)
if final == "" then final = draft end

-- 3. four output files ------------------------------------------------------------------------------
write(OUT .. "/outline.md", "# Outline: " .. TOPIC .. "\n\n" .. outline .. "\n")
write(OUT .. "/draft.md", "# Draft: " .. TOPIC .. "\n\n" .. draft .. "\n")
write(OUT .. "/review.md", string.format("# Review\n\nScore: %d/10%s (threshold %d)\n\n%s\n", score,
  scored and "" or " (no score in the reply; assumed)", THRESHOLD, review))
write(OUT .. "/final.md", "# " .. TOPIC .. "\n\n" .. final .. "\n")

print("== Content creator summary ==")
print(string.format("review score: %d/10 (threshold %d)", score, THRESHOLD))
print(string.format("quality gate: %s branch (%s)", branch, needs_edit == "yes" and "edited" or "kept as written"))
print(string.format("final article: %d words in final.md", select(2, final:gsub("%S+", ""))))
print("files written: 4")
