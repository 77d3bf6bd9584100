-- content-creator (layer 3): plan, write and review a short article; edit it only when the review
-- scores it below a threshold (a conditional workflow).
--
-- Four agents: planner (title), writer (three sentences), reviewer (score), editor (a closing
-- sentence). Prompts are few-shot completions, one line per call, so small base models can do
-- each step; Metrics reports which parts the model wrote and which fell back.
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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Title:", "Article:") or copies
-- 16+ characters of the prompt verbatim (an echo, not an answer).
local function answer_line(text, prompt)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(prompt or ""):find(line, 1, true)) then return "" end
  return line
end

-- agents: each prompt is a few worked examples; the user text ends where the answer starts ------
local TITLES = "Topic: how bees make honey\nTitle: From Flower to Jar: How Bees Make Honey\n\n"
  .. "Topic: why cities plant trees\nTitle: Green Streets: Why Cities Plant Trees"
local ARTICLES = "Title: From Flower to Jar: How Bees Make Honey\n"
  .. "1. Every spoonful of honey starts as nectar that a bee carried home from a flower.\n"
  .. "2. Inside the hive, bees pass the nectar from mouth to mouth and fan it with their wings until most of the water is gone.\n"
  .. "3. The thick, acidic result keeps for years, which is why the hive can live on it all winter.\n\n"
  .. "Title: Green Streets: Why Cities Plant Trees\n"
  .. "1. On a hot afternoon, the coolest street in town is usually the one lined with trees.\n"
  .. "2. Their leaves catch dust and soot, so the air under them is cleaner too.\n"
  .. "3. People who walk under trees report feeling calmer, which is why planners now count trees as infrastructure."
local REVIEWS = "Article: Every spoonful of honey starts as nectar. Bees dry it with their wings until it keeps for years.\nScore: 8\n\n"
  .. "Article: Trees are good. Trees are good for cities. Cities have trees.\nScore: 3"
local CLOSINGS = "Article: Every spoonful of honey starts as nectar. Bees dry it with their wings. The result keeps for years.\n"
  .. "Closing: So the next time you open a jar, thank a few thousand tireless bees.\n\n"
  .. "Article: The coolest street is the one lined with trees. Leaves catch dust and soot. People feel calmer under trees.\n"
  .. "Closing: Planting a tree is one of the cheapest ways to make a city better to live in."
local function agent(name, examples, temperature, tokens)
  return Agent.builder():name(name):model(MODEL):system_prompt(examples)
    :temperature(temperature):max_tokens(tokens):max_conversation_length(0):build()
end
agent("content_planner", TITLES, 0.2, 24)
agent("content_writer", ARTICLES, 0.7, 60)
agent("content_reviewer", REVIEWS, 0, 4)
agent("content_editor", CLOSINGS, 0.5, 48)

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (the workflows' agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

-- 1. plan -> write (three sentences, each step reading the earlier ones) -> review -----------------
local pipeline = Workflow.builder():name("plan_write_review"):sequential()
  :add_step{name = "title", type = "agent", agent = "content_planner", input = "Topic: {{topic}}\nTitle:"}
  :add_step{name = "s1", type = "agent", agent = "content_writer", input = "Title: {{title}}\n1."}
  :add_step{name = "s2", type = "agent", agent = "content_writer", input = "Title: {{title}}\n1. {{s1}}\n2."}
  :add_step{name = "s3", type = "agent", agent = "content_writer", input = "Title: {{title}}\n1. {{s1}}\n2. {{s2}}\n3."}
  :add_step{name = "review", type = "agent", agent = "content_reviewer", input = "Article: {{s1}} {{s2}} {{s3}}\nScore:"}
  :build()
local r = must(pipeline:execute({topic = TOPIC}), "plan/write/review")
local out = r.outputs or {}
local title = answer_line(out.title, TITLES)
Metrics.set("title_by_model", title ~= "" and 1 or 0)
if title == "" then title = TOPIC end
local sentences, written, seen = {}, 0, ARTICLES .. "\n" .. title
for i = 1, 3 do -- a sentence that repeats an earlier one (or an example) is not counted
  local s = answer_line(out["s" .. i], seen)
  if s ~= "" then written, sentences[#sentences + 1], seen = written + 1, s, seen .. "\n" .. s end
end
Metrics.set("sentences_by_model", written)
Metrics.set("sentence_fallbacks", 3 - written)
local draft = #sentences > 0 and table.concat(sentences, " ")
  or "(the writer gave no usable sentence; this draft is empty)"
-- The score is the reply's leading number (1-10); anything else is no score.
local score = tonumber(answer_line(out.review):match("^(%d+)"))
if score and (score < 1 or score > 10) then score = nil end
local scored = score ~= nil
Metrics.set("review_scored", scored and 1 or 0)
score = score or 5 -- no score: treat as middling, which sends the draft to the editor

-- 2. conditional: edit (add a closing sentence) only when the score is below the threshold ---------
local needs_edit = score < THRESHOLD and "yes" or "no"
local gate = Workflow.builder():name("quality_gate"):conditional()
  :condition({type = "shared_data_equals", key = "needs_edit", value = "yes"})
  :add_then_step{name = "edited", type = "agent", agent = "content_editor", input = "Article: {{draft}}\nClosing:"}
  :add_else_step{name = "kept", type = "function", fn = function() return "" end}
  :build()
local g = must(gate:execute({needs_edit = needs_edit, draft = draft}), "quality gate")
local branch = (g.metadata and g.metadata.extra and g.metadata.extra.selected_branch) or "?"
completion:unregister() -- hooks outlive a kernel cell otherwise
local closing = needs_edit == "yes" and answer_line(g.text, CLOSINGS .. "\n" .. draft) or ""
if needs_edit == "yes" then Metrics.set("closing_by_model", closing ~= "" and 1 or 0) end
local final = draft .. (closing ~= "" and ("\n\n" .. closing) or "")

-- 3. four output files ------------------------------------------------------------------------------
write(OUT .. "/outline.md", "# Outline: " .. TOPIC .. "\n\nTitle: " .. title .. "\n")
write(OUT .. "/draft.md", "# " .. title .. "\n\n" .. draft .. "\n")
write(OUT .. "/review.md", string.format("# Review\n\nScore: %d/10%s (threshold %d)\n", score,
  scored and "" or " (no score in the reply; assumed)", THRESHOLD))
write(OUT .. "/final.md", "# " .. title .. "\n\n" .. final .. "\n")

print("== Content creator summary ==")
print(string.format("review score: %d/10 (threshold %d)", score, THRESHOLD))
print(string.format("quality gate: %s branch (%s)", branch, needs_edit == "yes" and "edited" or "kept as written"))
print(string.format("written by the model: title %s, %d of 3 sentences%s", title ~= TOPIC and "yes" or "no", written,
  needs_edit == "yes" and (", closing " .. (closing ~= "" and "yes" or "no")) or ""))
print(string.format("final article: %d words in final.md", select(2, final:gsub("%S+", ""))))
print("files written: 4")
