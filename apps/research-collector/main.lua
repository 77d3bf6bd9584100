-- research-collector (layer 2): research a topic from several angles in parallel, synthesize,
-- keep the findings in RAG and query them back.
--
-- Two agents: a researcher (used by every parallel branch) and a synthesizer. Prompts are few-shot
-- completions ("Q: ... A:"), so small base models answer them too; Metrics reports how many
-- findings and whether the synthesis came from the model.
--
--   llmspell apps run research-collector -- --output-dir ./out/research --topic "heat pumps"

local OUT = (ARGS["output-dir"] or "llmspell-output/research-collector"):gsub("/+$", "")
local TOPIC = ARGS.topic or "home batteries for solar power"
local COLLECTION = "research_collector"
local ANGLES = {
  {key = "benefits", label = "Benefits", ask = "What is one benefit of"},
  {key = "challenges", label = "Challenges", ask = "What is one challenge of"},
  {key = "trends", label = "Trend", ask = "What is a recent trend in"},
}

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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Q:", "Headline:") or copies
-- 16+ characters of the prompt verbatim (an echo, not an answer).
local function answer_line(text, prompt)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(prompt or ""):find(line, 1, true)) then return "" end
  return line
end
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end

-- agents --------------------------------------------------------------------------------------
local RESEARCH_EXAMPLES = "Q: What is one benefit of electric cars?\nA: They produce no exhaust fumes in the city.\n\n"
  .. "Q: What is one challenge of electric cars?\nA: Charging takes longer than filling a tank.\n\n"
  .. "Q: What is a recent trend in electric cars?\nA: Cheaper batteries are bringing prices down."
Agent.builder():name("researcher"):model("openai/gpt-4o-mini"):system_prompt(RESEARCH_EXAMPLES)
  :temperature(0.2):max_tokens(40):max_conversation_length(0):build()
local SYNTHESIS_EXAMPLES = "Topic: electric cars\nBenefits: They produce no exhaust fumes in the city.\n"
  .. "Challenges: Charging takes longer than filling a tank.\nTrend: Cheaper batteries are bringing prices down.\n"
  .. "Headline: Clean cars get cheaper, charging still lags\n\n"
  .. "Topic: remote work\nBenefits: People save time on commuting.\nChallenges: Teams can feel isolated.\n"
  .. "Trend: Companies are moving to hybrid schedules.\n"
  .. "Headline: Hybrid work wins as remote staff feel isolated"
local synthesizer = Agent.builder():name("synthesizer"):model("anthropic/claude-3-5-haiku-latest")
  :system_prompt(SYNTHESIS_EXAMPLES):temperature(0.2):max_tokens(60):max_conversation_length(0):build()

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (the parallel branches' agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

-- 1. parallel research: one branch per angle ---------------------------------------------------
local research = Workflow.builder():name("parallel_research"):parallel():max_concurrency(3)
for _, a in ipairs(ANGLES) do
  research:add_step{name = a.key, type = "agent", agent = "researcher", input = "Q: " .. a.ask .. " {{topic}}?\nA:"}
end
local r = must(research:build():execute({topic = TOPIC}), "parallel research")

local findings, by_model = {}, 0
for _, a in ipairs(ANGLES) do
  local text = answer_line((r.outputs or {})[a.key], RESEARCH_EXAMPLES)
  if text ~= "" then by_model = by_model + 1 else text = "(no finding from the model for " .. a.key .. ")" end
  findings[#findings + 1] = {angle = a.key, label = a.label, text = text, by_model = text:sub(1, 1) ~= "("}
end
Metrics.set("findings_by_model", by_model)
Metrics.set("finding_fallbacks", #ANGLES - by_model)

-- 2. synthesis ------------------------------------------------------------------------------------
local notes = {"Topic: " .. TOPIC}
for _, f in ipairs(findings) do notes[#notes + 1] = f.label .. ": " .. clip(f.text, 200) end
local syn_prompt = table.concat(notes, "\n") .. "\nHeadline:"
local synthesis = answer_line(synthesizer:execute({text = syn_prompt}).text, SYNTHESIS_EXAMPLES .. "\n" .. syn_prompt)
Metrics.set("synthesis_by_model", synthesis ~= "" and 1 or 0)
if synthesis == "" then synthesis = "(no synthesis from the model; the findings above stand alone)" end
completion:unregister() -- hooks outlive a kernel cell otherwise

-- 3. RAG: ingest the findings, then ask questions against them ------------------------------------
local hits_out = {}
if RAG then
  pcall(RAG.delete_collection, COLLECTION) -- start clean so every run sees the same corpus
  local docs = {}
  for i, f in ipairs(findings) do
    docs[#docs + 1] = {id = "finding-" .. i, content = f.text, metadata = {angle = f.angle, topic = TOPIC}}
  end
  docs[#docs + 1] = {id = "synthesis", content = synthesis, metadata = {angle = "synthesis", topic = TOPIC}}
  local ing = RAG.ingest(docs, {collection = COLLECTION, chunk_size = 128, chunk_overlap = 16})
  print(string.format("RAG: %d documents ingested, %d vectors", ing.documents_processed or 0, ing.vectors_created or 0))
  for _, q in ipairs({"What problems remain?", "Why is it useful?"}) do
    local hits = RAG.search(q, {collection = COLLECTION, limit = 2})
    local list = {}
    for i, h in ipairs(hits) do
      list[#list + 1] = {rank = i, angle = (h.metadata or {}).angle or "?", score = h.score, text = clip(h.content, 160)}
    end
    hits_out[#hits_out + 1] = {question = q, hits = list}
    print(string.format("query '%s': %d hits, best from %s", q, #list, list[1] and list[1].angle or "none"))
  end
  RAG.save()
else
  print("RAG is disabled ([rag] enabled = false): skipping ingestion and queries")
end

-- 4. files and summary ----------------------------------------------------------------------------
local md = {"# Research: " .. TOPIC, ""}
for _, f in ipairs(findings) do
  md[#md + 1] = "## " .. f.angle
  md[#md + 1] = ""
  md[#md + 1] = f.text
  md[#md + 1] = ""
end
write(OUT .. "/findings.md", table.concat(md, "\n"))
write(OUT .. "/synthesis.md", "# Synthesis: " .. TOPIC .. "\n\n" .. synthesis .. "\n")
write(OUT .. "/rag_queries.json", JSON.stringify({topic = TOPIC, collection = COLLECTION,
                                                  queries = JSON.array(hits_out)}, {indent = 2}))

print("== Research collector summary ==")
print(string.format("angles researched: %d in parallel (%d answered by the model)", #findings, by_model))
print(string.format("rag queries answered: %d", #hits_out))
print("synthesis: " .. clip(synthesis, 100))
