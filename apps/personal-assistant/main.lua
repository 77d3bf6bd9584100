-- personal-assistant (layer 3): turn loose notes into tasks and a schedule, remember the notes in
-- RAG, and answer questions from that memory. Working data lives in ephemeral state.
--
-- Four agents: task extractor, scheduler, memory keeper, question answerer.
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
-- Bullet-ish lines of a reply ("- x", "1. x", "* x"), cleaned; plain lines when there are no bullets.
local function items_of(text, limit)
  local bullets, plain = {}, {}
  for line in tostring(text or ""):gmatch("[^\n]+") do
    local item = line:match("^%s*[-*•]%s*(.+)") or line:match("^%s*%d+[.)]%s*(.+)")
    if item and #trim(item) > 2 then bullets[#bullets + 1] = clip(item, 100)
    elseif #trim(line) > 2 then plain[#plain + 1] = clip(line, 100) end
  end
  local list = #bullets > 0 and bullets or plain
  while #list > limit do table.remove(list) end
  return list
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

-- agents --------------------------------------------------------------------------------------
local function agent(name, prompt, tokens)
  return Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(prompt)
    :temperature(0.2):max_tokens(tokens):max_conversation_length(0):build()
end
local extractor = agent("task_extractor", "You extract action items. Reply with a bullet list, one task per line.", 128)
local scheduler = agent("scheduler", "You plan a week. Reply with lines like 'Monday: task'.", 128)
local keeper = agent("memory_keeper", "You turn notes into short facts worth remembering, one per line.", 128)
local answerer = agent("answerer", "You answer questions briefly using only the given memory.", 64)

-- 1. tasks ---------------------------------------------------------------------------------------
local tasks = items_of(extractor:execute({text = "Notes:\n" .. NOTES .. "\nList the tasks."}).text, 10)
if #tasks == 0 then -- the model gave nothing usable: take the note sentences that ask for action
  for sentence in NOTES:gmatch("[^.\n]+") do
    local s = trim(sentence)
    if s:find("^[Nn]eed") or s:find("^[Cc]all") or s:find("^[Bb]uy") or s:find("^[Pp]ay") or s:find("send") then
      tasks[#tasks + 1] = clip(s, 100)
    end
  end
end
State.save(SCOPE, "tasks", tasks)

-- 2. schedule (reads the tasks back from state) ----------------------------------------------------
local saved = State.load(SCOPE, "tasks", {})
local schedule_text = trim(scheduler:execute({text = "Tasks:\n- " .. table.concat(saved, "\n- ")
  .. "\nSpread them over Monday to Friday."}).text)
local schedule = items_of(schedule_text, 10)
if #schedule == 0 then
  local days = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}
  for i, t in ipairs(saved) do schedule[#schedule + 1] = days[(i - 1) % 5 + 1] .. ": " .. t end
end
State.save(SCOPE, "schedule", schedule)

-- 3. memory: facts from the notes go into RAG --------------------------------------------------------
local facts = items_of(keeper:execute({text = "Notes:\n" .. NOTES .. "\nList the facts."}).text, 8)
local memory_docs = {{id = "notes", content = NOTES, metadata = {kind = "notes"}}}
for i, f in ipairs(facts) do memory_docs[#memory_docs + 1] = {id = "fact-" .. i, content = f, metadata = {kind = "fact"}} end

local QUESTIONS = {"When is the dentist appointment?", "What gift should I buy?", "Who gets the draft report?"}
local answers = {}
if RAG then
  pcall(RAG.delete_collection, COLLECTION)
  local ing = RAG.ingest(memory_docs, {collection = COLLECTION, chunk_size = 64, chunk_overlap = 8})
  print(string.format("memory: %d documents, %d vectors", ing.documents_processed or 0, ing.vectors_created or 0))
  for _, q in ipairs(QUESTIONS) do
    local hits = RAG.search(q, {collection = COLLECTION, limit = 2})
    local context = {}
    for _, h in ipairs(hits) do context[#context + 1] = clip(h.content, 200) end
    local a = trim(answerer:execute({text = "Memory:\n" .. table.concat(context, "\n") .. "\nQuestion: " .. q}).text)
    if a == "" then a = "(no answer; closest memory: " .. (context[1] or "none") .. ")" end
    answers[#answers + 1] = {question = q, answer = a, memory_hits = #hits}
  end
else
  for _, q in ipairs(QUESTIONS) do answers[#answers + 1] = {question = q, answer = "(RAG disabled)", memory_hits = 0} end
end

-- 4. files; the scratch state is dropped (ephemeral by design) ---------------------------------------
local function bullets(list) return "- " .. table.concat(list, "\n- ") .. "\n" end
write(OUT .. "/tasks.md", "# Tasks\n\n" .. bullets(tasks))
write(OUT .. "/schedule.md", "# This week\n\n" .. bullets(schedule))
local qa = {"# Questions from memory", ""}
for _, a in ipairs(answers) do
  qa[#qa + 1] = "**" .. a.question .. "**"
  qa[#qa + 1] = ""
  qa[#qa + 1] = a.answer
  qa[#qa + 1] = ""
end
write(OUT .. "/answers.md", table.concat(qa, "\n"))
local dropped = State.clear(SCOPE)

print("== Personal assistant summary ==")
print(string.format("tasks extracted: %d", #tasks))
print(string.format("schedule entries: %d", #schedule))
print(string.format("questions answered from memory: %d", #answers))
print(string.format("ephemeral state cleared: %d keys", dropped or 0))
