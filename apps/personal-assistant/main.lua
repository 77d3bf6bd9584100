-- personal-assistant (layer 3): turn loose notes into tasks and a schedule, remember the notes in
-- RAG, and answer questions from that memory. Working data lives in ephemeral state.
--
-- Four agents: task extractor (labels each note sentence), scheduler (a day per task), memory
-- keeper (keywords per note line), question answerer. Prompts are few-shot completions, one short
-- line per call, so small base models can do each step; Metrics reports model answers and fallbacks.
--
--   llmspell apps run personal-assistant -- --output-dir ./out/assistant [--notes my-notes.txt]

local OUT = (ARGS["output-dir"] or "llmspell-output/personal-assistant"):gsub("/+$", "")
local COLLECTION = "assistant_memory"
local SCOPE = "assistant_session" -- scratch State scope, cleared at the end of the run

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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Kind:", "Q:") or copies
-- 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end

-- the notes (the app's input, written beside its outputs) --------------------------------------
local NOTES = [[
Monday: dentist at 9:30. Need to renew the passport before the trip to Lisbon in June.
Call mum about the birthday dinner on Saturday; book a table for six.
Project Falcon: send the draft report to Priya by Wednesday, review Omar's pull request.
Buy: coffee beans, printer paper, a birthday gift (she likes gardening).
Gym Tuesday and Thursday evenings. Pay the electricity bill (due on the 15th).
]]
if ARGS.notes then -- the user's own notes instead of the sample page
  NOTES = Tool.invoke("file_operations", {operation = "read", path = ARGS.notes}).text
end
write(OUT .. "/notes.txt", NOTES)

-- agents: each prompt is a few worked examples; the user text ends where the answer starts ------
local KINDS = "Sentence: Need to return the library books\nKind: task\n\nSentence: The library closes at six\nKind: info\n\n"
  .. "Sentence: Email the landlord about the heating\nKind: task\n\nSentence: Tom prefers tea\nKind: info\n\n"
  .. "Sentence: Friday: haircut at 4\nKind: appointment"
local DAYS = "Item: Friday: haircut at 4\nDay: Friday\n\nItem: Need to return the library books\nDay: any\n\n"
  .. "Item: Water the plants on Sunday morning\nDay: Sunday\n\nItem: Email the landlord by Thursday\nDay: Thursday"
local KEYWORDS = "Note: Friday: haircut at 4. Need to return the library books.\nKeywords: haircut, Friday, library books\n\n"
  .. "Note: Email the landlord about the heating; water the plants.\nKeywords: landlord, heating, plants"
local ANSWERS = "Memory: Friday: haircut at 4. Need to return the library books.\nQ: When is the haircut?\nA: Friday at 4\n\n"
  .. "Memory: Email the landlord about the heating; water the plants.\nQ: Who should get an email?\nA: the landlord"
local function agent(name, examples, tokens)
  return Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(examples)
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
local extractor = agent("task_extractor", KINDS, 4)
local scheduler = agent("scheduler", DAYS, 4)
local keeper = agent("memory_keeper", KEYWORDS, 24)
local answerer = agent("answerer", ANSWERS, 16)

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them to each call.
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

-- 1. tasks: the extractor labels every sentence of the notes (task, appointment or info) --------------
local sentences = {}
for line in NOTES:gmatch("[^\n]+") do
  for part in line:gmatch("[^.;]+") do
    local sentence = trim(part)
    if #sentence > 3 then sentences[#sentences + 1] = sentence end
  end
end
local tasks, labelled = {}, 0
for _, sentence in ipairs(sentences) do
  local kind = answer_line(extractor:execute({text = "Sentence: " .. sentence .. "\nKind:"}).text, KINDS):lower():match("^(%a+)")
  if kind == "task" or kind == "appointment" or kind == "info" then
    labelled = labelled + 1
    if kind ~= "info" then tasks[#tasks + 1] = {text = clip(sentence, 100), by = "model"} end
  elseif sentence:find("^[Nn]eed") or sentence:find("^[Cc]all") or sentence:find("^[Bb]uy")
      or sentence:find("^[Pp]ay") or sentence:find("send") then -- no usable label: a verb rule decides
    tasks[#tasks + 1] = {text = clip(sentence, 100), by = "rule"}
  end
end
Metrics.set("sentences", #sentences)
Metrics.set("sentences_labelled_by_model", labelled)
Metrics.set("label_fallbacks", #sentences - labelled)
State.save(SCOPE, "tasks", tasks)

-- 2. schedule (reads the tasks back from state): the scheduler names a day per task ----------------
local WEEK = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
local saved = State.load(SCOPE, "tasks", {})
local schedule, days_by_model = {}, 0
for i, t in ipairs(saved) do
  local word = answer_line(scheduler:execute({text = "Item: " .. t.text .. "\nDay:"}).text, DAYS):match("^(%a+)")
  local day
  for _, d in ipairs(WEEK) do if word and word:lower() == d:lower() then day = d end end
  if word and word:lower() == "any" then day = "any day" end
  if day then days_by_model = days_by_model + 1 else day = WEEK[(i - 1) % 5 + 1] .. " (fallback)" end
  schedule[#schedule + 1] = day .. ": " .. t.text
end
Metrics.set("days_by_model", days_by_model)
Metrics.set("day_fallbacks", #saved - days_by_model)
State.save(SCOPE, "schedule", schedule)

-- 3. memory: each note line with the keeper's keywords goes into RAG ---------------------------------
local memory_docs, keyworded = {}, 0
local n = 0
for line in NOTES:gmatch("[^\n]+") do
  n = n + 1
  local words = answer_line(keeper:execute({text = "Note: " .. trim(line) .. "\nKeywords:"}).text, KEYWORDS)
  if words ~= "" then keyworded = keyworded + 1 end
  memory_docs[#memory_docs + 1] = {id = "note-" .. n, content = trim(line),
                                   metadata = {kind = "note", keywords = words ~= "" and words or "(none)"}}
end
Metrics.set("notes_keyworded_by_model", keyworded)

local QUESTIONS = {"When is the dentist appointment?", "What gift should I buy?", "Who gets the draft report?"}
local answers, answered = {}, 0
if RAG then
  pcall(RAG.delete_collection, COLLECTION)
  local ing = RAG.ingest(memory_docs, {collection = COLLECTION, chunk_size = 64, chunk_overlap = 8})
  print(string.format("memory: %d documents, %d vectors", ing.documents_processed or 0, ing.vectors_created or 0))
  for _, q in ipairs(QUESTIONS) do
    local hits = RAG.search(q, {collection = COLLECTION, limit = 2})
    local context = {}
    for _, h in ipairs(hits) do context[#context + 1] = clip(h.content, 200) end
    local a = answer_line(answerer:execute({text = "Memory: " .. table.concat(context, " ") .. "\nQ: " .. q .. "\nA:"}).text,
                          ANSWERS)
    if a ~= "" then answered = answered + 1 else a = "(no answer from the model)" end
    answers[#answers + 1] = {question = q, answer = a, memory = context}
  end
else
  for _, q in ipairs(QUESTIONS) do answers[#answers + 1] = {question = q, answer = "(RAG disabled)", memory = {}} end
end
Metrics.set("answers_by_model", answered)
completion:unregister() -- hooks outlive a kernel cell otherwise

-- 4. files; the scratch state is dropped (ephemeral by design) ---------------------------------------
local function bullets(list) return "- " .. table.concat(list, "\n- ") .. "\n" end
local task_lines = {}
for _, t in ipairs(tasks) do task_lines[#task_lines + 1] = t.text .. " (" .. t.by .. ")" end
write(OUT .. "/tasks.md", "# Tasks\n\n" .. bullets(task_lines))
write(OUT .. "/schedule.md", "# This week\n\n" .. bullets(schedule))
local qa = {"# Questions from memory", ""}
for _, a in ipairs(answers) do
  qa[#qa + 1] = "**" .. a.question .. "**"
  qa[#qa + 1] = ""
  qa[#qa + 1] = "A: " .. a.answer
  qa[#qa + 1] = ""
  qa[#qa + 1] = "Memory: " .. table.concat(a.memory, " | ")
  qa[#qa + 1] = ""
end
write(OUT .. "/answers.md", table.concat(qa, "\n"))
local dropped = State.clear(SCOPE)

print("== Personal assistant summary ==")
print(string.format("tasks extracted: %d", #tasks))
print(string.format("schedule entries: %d", #schedule))
print(string.format("questions answered from memory: %d (%d by the model)", #answers, answered))
print(string.format("ephemeral state cleared: %d keys", dropped or 0))
