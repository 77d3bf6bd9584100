-- communication-manager (layer 4): triage an inbox. Each message is classified, its sentiment
-- read, a reply drafted and a follow-up scheduled; a tracker keeps the threads in State and a
-- Session. The inbox arrives in two batches, processed as two runs: the second run knows only
-- what the first one persisted (State keys and the saved session), not its Lua variables.
--
-- Five agents: classifier, sentiment analyst, responder, scheduler, tracker.
--
--   llmspell apps run communication-manager -- --output-dir ./out/comms [--inbox messages.json]

local OUT = (ARGS["output-dir"] or "llmspell-output/communication-manager"):gsub("/+$", "")
local SCOPE = "comms"
local CATEGORIES = {"support", "sales", "billing", "partnership", "spam"}
local SENTIMENTS = {"negative", "positive", "neutral"}
local WHEN = {"today", "tomorrow", "next week"}

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
local function pick(text, choices, default)
  local low, best, pos = tostring(text or ""):lower(), default, math.huge
  for _, c in ipairs(choices) do
    local p = low:find(c, 1, true)
    if p and p < pos then best, pos = c, p end
  end
  return best
end

local INBOX = {
  {id = "m1", from = "ana@customer.example", subject = "App crashes on login",
   body = "Since yesterday the app crashes every time I log in. I have a demo in two hours!"},
  {id = "m2", from = "li@bigcorp.example", subject = "Pricing for 200 seats",
   body = "We would like a quote for 200 seats and an annual contract. Great product so far."},
  {id = "m3", from = "sam@customer.example", subject = "Charged twice",
   body = "My card was charged twice this month. Please refund the duplicate payment."},
  {id = "m4", from = "promo@deals.example", subject = "You WON a free cruise",
   body = "Click here to claim your prize now!!! Limited offer."},
}
if ARGS.inbox then -- a JSON array of {id, from, subject, body}
  local ok, data = pcall(JSON.parse, Tool.invoke("file_operations", {operation = "read", path = ARGS.inbox}).text)
  if not ok or type(data) ~= "table" or #data < 2 then error("--inbox must be a JSON array of at least two messages") end
  INBOX = {}
  for i, m in ipairs(data) do
    INBOX[i] = {id = tostring(m.id or ("m" .. i)), from = tostring(m.from or "unknown"),
                subject = tostring(m.subject or "(no subject)"), body = tostring(m.body or "")}
  end
end
write(OUT .. "/inbox.json", JSON.stringify(INBOX, {indent = 2}))

-- agents --------------------------------------------------------------------------------------
local function agent(name, prompt, tokens)
  return Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(prompt)
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
agent("msg_classifier", "Classify emails. Answer with one word: support, sales, billing, partnership or spam.", 8)
agent("sentiment_analyst", "Rate the sender's mood. Answer with one word: positive, neutral or negative.", 8)
agent("responder", "You write short, polite email replies of two or three sentences.", 96)
agent("followup_scheduler", "Decide when to follow up. Answer with: today, tomorrow or next week.", 8)
local tracker = agent("thread_tracker", "You summarize the state of an inbox in two sentences.", 96)

local triage = Workflow.builder():name("triage_message"):sequential()
  :add_step{name = "category", type = "agent", agent = "msg_classifier",
            input = "Subject: {{subject}}\n{{body}}\nCategory?"}
  :add_step{name = "sentiment", type = "agent", agent = "sentiment_analyst", input = "{{body}}\nMood?"}
  :add_step{name = "reply", type = "agent", agent = "responder",
            input = "Reply to this email from {{from}}.\nSubject: {{subject}}\n{{body}}"}
  :add_step{name = "followup", type = "agent", agent = "followup_scheduler",
            input = "Email: {{subject}}. When should we follow up?"}
  :build()

-- one "run": triage a batch, persist threads in State and artifacts in the session -------------------
local function process_batch(run_no, batch, session_id)
  local threads = State.load(SCOPE, "threads", {})
  for _, msg in ipairs(batch) do
    local r = must(triage:execute({subject = msg.subject, body = msg.body, from = msg.from}), "triage of " .. msg.id)
    local o = r.outputs or {}
    local category = pick(o.category, CATEGORIES, "support")
    local sentiment = pick(o.sentiment, SENTIMENTS, "neutral")
    local when = pick(o.followup, WHEN, category == "spam" and "next week" or "tomorrow")
    local reply = trim(o.reply)
    if reply == "" or category == "spam" then
      reply = category == "spam" and "(no reply: filtered as spam)" or "Thank you for your message; we will get back to you shortly."
    end
    threads[msg.id] = {subject = msg.subject, from = msg.from, category = category, sentiment = sentiment,
                       followup = when, status = category == "spam" and "closed" or "awaiting follow-up", run = run_no}
    Artifact.store(session_id, "agent_output", "reply-" .. msg.id .. ".txt", reply,
                   {mime_type = "text/plain", tags = {category, sentiment}})
  end
  State.save(SCOPE, "threads", threads)
  State.save(SCOPE, "last_run", run_no)
  Session.save(session_id)
end

-- run 1 ------------------------------------------------------------------------------------------------
local previous_runs = State.load(SCOPE, "runs_total", 0) -- survives across real runs of the app
State.delete(SCOPE, "threads") -- each run of the app starts a fresh inbox
local session_id = Session.create({name = "inbox-triage", description = "communication-manager inbox",
                                   tags = {"comms", "triage"}})
State.save(SCOPE, "session_id", session_id)
local half = #INBOX // 2
local first, second = {}, {}
for i, m in ipairs(INBOX) do table.insert(i <= half and first or second, m) end
process_batch(1, first, session_id)
Session.suspend(session_id)
print(string.format("run 1: triaged %d messages, session saved (%d artifacts)", #first, #Artifact.list(session_id)))

-- run 2: everything comes back from State and the saved session ----------------------------------
local sid = State.load(SCOPE, "session_id")
Session.load(sid)
process_batch(2, second, sid)
local threads = State.load(SCOPE, "threads", {})
local ids = {}
for id in pairs(threads) do ids[#ids + 1] = id end
table.sort(ids)
local lines = {}
for _, id in ipairs(ids) do
  local t = threads[id]
  lines[#lines + 1] = string.format("%s [%s/%s] %s -> %s", id, t.category, t.sentiment, t.subject, t.status)
end
local status = trim(tracker:execute({text = "Threads:\n" .. table.concat(lines, "\n") .. "\nSummarize."}).text)
if status == "" then status = string.format("%d threads tracked.", #ids) end
Session.complete(sid)
State.save(SCOPE, "runs_total", previous_runs + 1)
local info = Session.get(sid) or {}
print(string.format("run 2: resumed session, %d threads tracked", #ids))

-- files and summary ------------------------------------------------------------------------------------
local md = {"# Replies", ""}
for _, a in ipairs(Artifact.list(sid)) do
  local item = Artifact.get(sid, a.content_hash)
  md[#md + 1] = "## " .. tostring(a.name)
  md[#md + 1] = ""
  md[#md + 1] = item and item.content or ""
  md[#md + 1] = ""
end
write(OUT .. "/responses.md", table.concat(md, "\n"))
write(OUT .. "/tracking.json", JSON.stringify({threads = threads, summary = status}, {indent = 2}))
write(OUT .. "/session.json", JSON.stringify({id = sid, name = info.name, status = info.status,
                                              artifacts = info.artifact_count, tags = info.tags}, {indent = 2}))

local by_cat = {}
for _, id in ipairs(ids) do by_cat[threads[id].category] = (by_cat[threads[id].category] or 0) + 1 end
local cats = {}
for _, c in ipairs(CATEGORIES) do if by_cat[c] then cats[#cats + 1] = c .. " " .. by_cat[c] end end
print("== Communication manager summary ==")
print(string.format("messages triaged: %d over 2 runs", #ids))
print("categories: " .. table.concat(cats, ", "))
print(string.format("session %s: %s, %d artifacts", tostring(sid):sub(1, 8), tostring(info.status), info.artifact_count or 0))
print("tracker: " .. clip(status, 120))
print(string.format("state: %d runs of this app recorded in the state store", previous_runs + 1))
