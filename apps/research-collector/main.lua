-- research-collector (layer 2): research a topic from several angles in parallel, synthesize,
-- keep the findings in RAG and query them back.
--
-- Two agents: a researcher (used by every parallel branch) and a synthesizer.
--
--   llmspell apps run research-collector -- --output-dir ./out/research --topic "heat pumps"

local OUT = (ARGS["output-dir"] or "llmspell-output/research-collector"):gsub("/+$", "")
local TOPIC = ARGS.topic or "home batteries for solar power"
local COLLECTION = "research_collector"
local ANGLES = {
  {key = "benefits", ask = "What are the main benefits of"},
  {key = "challenges", ask = "What are the main challenges of"},
  {key = "trends", ask = "What is a recent trend in"},
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
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end

-- agents --------------------------------------------------------------------------------------
Agent.builder():name("researcher"):model("openai/gpt-4o-mini")
  :system_prompt("You are a research assistant. Answer in two or three factual sentences.")
  :temperature(0.2):max_tokens(96):max_conversation_length(0):build()
local synthesizer = Agent.builder():name("synthesizer"):model("anthropic/claude-3-5-haiku-latest")
  :system_prompt("You combine research notes into a short, balanced summary.")
  :temperature(0.2):max_tokens(160):max_conversation_length(0):build()

-- 1. parallel research: one branch per angle ---------------------------------------------------
local research = Workflow.builder():name("parallel_research"):parallel():max_concurrency(3)
for _, a in ipairs(ANGLES) do
  research:add_step{name = a.key, type = "agent", agent = "researcher", input = a.ask .. " {{topic}}?"}
end
local r = must(research:build():execute({topic = TOPIC}), "parallel research")

local findings = {}
for _, a in ipairs(ANGLES) do
  local text = trim((r.outputs or {})[a.key])
  if text == "" then text = "(no finding returned for " .. a.key .. ")" end
  findings[#findings + 1] = {angle = a.key, text = text}
end

-- 2. synthesis ------------------------------------------------------------------------------------
local notes = {}
for _, f in ipairs(findings) do notes[#notes + 1] = f.angle .. ": " .. clip(f.text, 300) end
local syn = synthesizer:execute({text = "Topic: " .. TOPIC .. "\nNotes:\n" .. table.concat(notes, "\n")
  .. "\nWrite a short summary."})
local synthesis = trim(syn.text)
if synthesis == "" then synthesis = "Summary unavailable; the notes above are the findings." end

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
print(string.format("angles researched: %d in parallel", #findings))
print(string.format("rag queries answered: %d", #hits_out))
print("synthesis: " .. clip(synthesis, 100))
