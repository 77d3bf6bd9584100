-- knowledge-base (layer 4): ingest a handful of documents into RAG, then answer questions with
-- citations. Three workflows: a loop that summarizes and ingests each document, a sequential
-- question-answering pipeline (retrieve -> answer -> check), and a parallel batch over questions.
--
-- Three agents: curator (a topic label per document), answerer, fact checker. Prompts are
-- few-shot completions, one line per call, so small base models can answer them; Metrics reports
-- the model's answers and the fallbacks.
--
--   llmspell apps run knowledge-base -- --output-dir ./out/kb --question "How do I reset a device?"

local OUT = (ARGS["output-dir"] or "llmspell-output/knowledge-base"):gsub("/+$", "")
local COLLECTION = "knowledge_base"

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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Topic:", "Verdict:") or
-- copies 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end

-- the documents: a small handbook for a fictional smart thermostat ----------------------------
local DOCS = {
  {file = "setup.md", title = "Setup",
   text = "Mount the Nimbus thermostat on an inside wall, away from sunlight. Connect the C-wire, "
       .. "then hold the dial for three seconds to start pairing with the Nimbus app."},
  {file = "schedules.md", title = "Schedules",
   text = "Schedules have up to six periods per day. Eco mode lowers the target by 2 degrees at night. "
       .. "Changes made on the dial override the schedule until the next period."},
  {file = "reset.md", title = "Factory reset",
   text = "To factory reset, open Settings > Device > Reset and confirm, or hold the dial for fifteen "
       .. "seconds until the ring turns red. Reset removes schedules and Wi-Fi settings."},
  {file = "battery.md", title = "Battery and power",
   text = "Without a C-wire the thermostat runs on two AA batteries for about a year. A low-battery "
       .. "warning appears two weeks before the batteries run out."},
  {file = "privacy.md", title = "Privacy",
   text = "Temperature history is stored on the device for 30 days. Cloud sync is optional and can "
       .. "be turned off in Settings > Privacy; no audio or video is ever recorded."},
}
for _, d in ipairs(DOCS) do write(OUT .. "/docs/" .. d.file, "# " .. d.title .. "\n\n" .. d.text .. "\n") end

local QUESTIONS = {
  ARGS.question or "How do I factory reset the thermostat?",
  "How long do the batteries last?",
  "Is my temperature history sent to the cloud?",
}

-- agents: each prompt is a few worked examples; the user text ends where the answer starts ------
local CURATE = "Document: The kettle switches off by itself when the water boils. Descale it monthly with vinegar.\n"
  .. "Topic: descaling\n\n"
  .. "Document: Pair the headphones by holding the power button for five seconds until the light blinks blue.\n"
  .. "Topic: pairing"
local ANSWER = "Source [1]: The kettle switches off by itself when the water boils. Descale the kettle monthly with vinegar.\n"
  .. "Question: How often should I descale the kettle?\nAnswer: Once a month, with vinegar [1].\n\n"
  .. "Source [1]: The blender has three speeds. Never run it empty for more than ten seconds.\n"
  .. "Question: Can I run the blender empty?\nAnswer: Only for up to ten seconds [1].\n\n"
  .. "Source [1]: Photos stay on the camera's card. Upload to the web is off unless you turn it on in the app.\n"
  .. "Question: Are my photos uploaded to the web?\nAnswer: Only if you turn upload on in the app [1]."
local CHECK = "Source: A full charge lasts 20 hours.\nClaim: A charge lasts a week.\nVerdict: unsupported\n\n"
  .. "Source: Descale the kettle monthly with vinegar.\nClaim: Descale it once a month.\nVerdict: supported\n\n"
  .. "Source: The light blinks blue when pairing.\nClaim: The light blinks red when pairing.\nVerdict: unsupported\n\n"
  .. "Source: Hold the power button for five seconds.\nClaim: Hold the power button.\nVerdict: supported"
local function agent(name, examples, tokens)
  return Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(examples)
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
agent("curator", CURATE, 8)
agent("answerer", ANSWER, 48)
agent("fact_checker", CHECK, 4)

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (the workflows' agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

if not RAG then error("knowledge-base needs RAG: set [rag] enabled = true or pass --rag") end
pcall(RAG.delete_collection, COLLECTION)

-- workflow 1: a loop that asks the curator for each document's topic, and ingests it ------------------
local summaries, curated = {}, 0
local ingest = Workflow.builder():name("ingest_documents"):loop()
  :with_collection({1, 2, 3, 4, 5})
  :add_step{name = "doc_text", type = "function", fn = function(ctx)
    return DOCS[tonumber(ctx.loop_value)].text
  end}
  :add_step{name = "summary", type = "agent", agent = "curator", input = "Document: {{doc_text}}\nTopic:"}
  :add_step{name = "store", type = "function", fn = function(ctx)
    local d = DOCS[tonumber(ctx.loop_value)]
    local summary = answer_line(ctx.outputs.summary, CURATE)
    if summary ~= "" then curated = curated + 1 else summary = "(fallback) " .. d.title end
    summaries[d.file] = summary
    local r = RAG.ingest({id = d.file, content = d.title .. ". " .. d.text,
                          metadata = {source = d.file, title = d.title, topic = summary}},
                         {collection = COLLECTION, chunk_size = 96, chunk_overlap = 16})
    return string.format("%s: %d vectors", d.file, r.vectors_created or 0)
  end}
  :build()
local ing = must(ingest:execute({}), "document ingestion")
local stats = RAG.get_stats(COLLECTION)
print(string.format("ingested %d documents (%d vectors) in %d iterations", stats.total_documents or 0,
                    stats.total_vectors or 0, #(ing.iterations or {})))

-- workflow 2: retrieve -> answer -> check, for one question ----------------------------------------
local sources_of = {} -- question -> retrieved sources, for the citations
local qa = Workflow.builder():name("answer_question"):sequential()
  :add_step{name = "sources", type = "function", fn = function(ctx)
    local q = type(ctx.input) == "table" and tostring(ctx.input.question or "") or ""
    local hits = RAG.search(q, {collection = COLLECTION, limit = 1})
    local lines, list = {}, {}
    for i, h in ipairs(hits) do
      local src = (h.metadata or {}).source or ("doc" .. i)
      list[#list + 1] = {n = i, source = src, score = h.score}
      lines[#lines + 1] = clip(h.content, 260)
    end
    sources_of[q] = list
    return table.concat(lines, " ")
  end}
  :add_step{name = "answer", type = "agent", agent = "answerer",
            input = "Source [1]: {{sources}}\nQuestion: {{question}}\nAnswer:"}
  :add_step{name = "claim", type = "function", fn = function(ctx) -- the answer's first sentence, as a claim
    local answer = trim(ctx.outputs.answer)
    local first = (answer .. " "):match("^(.-[.!?])%s") or answer
    return (first:gsub("%s*%[%d+%]", ""))
  end}
  :add_step{name = "check", type = "agent", agent = "fact_checker", input = "Source: {{sources}}\nClaim: {{claim}}\nVerdict:"}
  :build()

-- workflow 3: the questions as a parallel batch of nested QA workflows --------------------------------
local batch = Workflow.builder():name("question_batch"):parallel():max_concurrency(3)
for i, q in ipairs(QUESTIONS) do
  batch:add_step{name = "q" .. i, type = "workflow", workflow = qa, input = {question = q}}
end
local br = must(batch:build():execute({}), "question batch")

-- each nested run wrote its step outputs to State under its own execution id (lua-api §5.9)
local child_of = {}
for _, s in ipairs(br.steps or {}) do child_of[s.name] = s end
completion:unregister() -- hooks outlive a kernel cell otherwise
local answers, answered, verdicts = {}, 0, 0
local out_lines = {"# Knowledge base answers", ""}
for i, q in ipairs(QUESTIONS) do
  local step = child_of["q" .. i] or {}
  local answer, verdict = "", trim(step.output)
  if step.execution_id then
    answer = trim(State.workflow_get(step.execution_id, "answer"))
    verdict = trim(State.workflow_get(step.execution_id, "check") or verdict)
  end
  answer = answer_line(answer, ANSWER)
  if answer ~= "" then answered = answered + 1 else answer = "(fallback) No answer from the model; see the cited source." end
  local word = answer_line(verdict):lower():match("^(%a+)")
  local supported = (word == "supported" or word == "unsupported") and word or "unchecked"
  if supported ~= "unchecked" then verdicts = verdicts + 1 end
  local cites = {}
  for _, src in ipairs(sources_of[q] or {}) do cites[#cites + 1] = string.format("[%d] docs/%s", src.n, src.source) end
  answers[i] = {question = q, answer = answer, check = supported, citations = cites}
  out_lines[#out_lines + 1] = "## " .. q
  out_lines[#out_lines + 1] = ""
  out_lines[#out_lines + 1] = answer
  out_lines[#out_lines + 1] = ""
  out_lines[#out_lines + 1] = "Sources: " .. (#cites > 0 and table.concat(cites, "; ") or "none found")
  out_lines[#out_lines + 1] = "Fact check: " .. supported
  out_lines[#out_lines + 1] = ""
end
write(OUT .. "/answers.md", table.concat(out_lines, "\n"))
local index = {}
for _, d in ipairs(DOCS) do index[#index + 1] = {file = "docs/" .. d.file, title = d.title, topic = summaries[d.file] or ""} end
write(OUT .. "/index.json", JSON.stringify({collection = COLLECTION, documents = index, answers = answers}, {indent = 2}))

local cited, model_cites = 0, 0
for _, a in ipairs(answers) do
  if #a.citations > 0 then cited = cited + 1 end
  if a.answer:find("%[1%]") then model_cites = model_cites + 1 end
end
Metrics.set("topics_by_curator", curated)
Metrics.set("curator_fallbacks", #DOCS - curated)
Metrics.set("answers_by_model", answered)
Metrics.set("answers_citing_source", model_cites)
Metrics.set("verdicts_by_model", verdicts)
print("== Knowledge base summary ==")
print(string.format("documents indexed: %d", #DOCS))
print(string.format("questions answered: %d (%d with citations)", #answers, cited))
for _, a in ipairs(answers) do print(string.format("- %s -> %s [%s]", a.question, a.citations[1] or "no source", a.check)) end
