-- communication-manager (layer 4): triage an inbox. Each message is classified, its sentiment
-- read, a reply drafted and a follow-up scheduled; a tracker keeps the threads in State and a
-- Session. The inbox arrives in two batches, processed as two runs: the second run knows only
-- what the first one persisted (State keys and the saved session), not its Lua variables.
--
-- Five agents: classifier, sentiment analyst, responder, scheduler, tracker. Prompts are few-shot
-- completions, one line per call, so small base models can answer them; Metrics reports the model's
-- answers and the fallbacks.
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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Email:", "Reply:") or copies
-- 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end
-- The choice a reply starts with, or nil.
local function pick(text, choices)
  local low = answer_line(text):lower()
  for _, c in ipairs(choices) do
    if low:sub(1, #c) == c then return c end
  end
  return nil
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

-- agents: each prompt is a few worked examples; the user text ends where the answer starts ------
local EXAMPLES = {
  msg_classifier = "Email: Password reset link does not work. I cannot get into my account.\nCategory: support\n\n"
    .. "Email: Can we get a discount for 50 licenses?\nCategory: sales\n\n"
    .. "Email: My invoice shows the wrong amount.\nCategory: billing\n\n"
    .. "Email: We run a podcast and would like to co-host an event with you.\nCategory: partnership\n\n"
    .. "Email: Cheap watches!!! Buy now, 90% off.\nCategory: spam",
  sentiment_analyst = "Email: This is the third time I ask. Nobody answers!\nMood: negative\n\n"
    .. "Email: Thanks, the new version works great.\nMood: positive\n\nEmail: Please send me the form.\nMood: neutral",
  responder = "Email from tom@example.org: My order arrived broken.\n"
    .. "Reply: Dear Tom, sorry your order arrived broken; we are sending a replacement today.\n\n"
    .. "Email from eva@example.org: Do you offer student discounts?\n"
    .. "Reply: Dear Eva, yes, students get 30% off; I have attached the details.",
  followup_scheduler = "Email: Our whole team is locked out before a launch.\nFollow up: today\n\n"
    .. "Email: Could you send a quote next month?\nFollow up: next week\n\n"
    .. "Email: The invoice PDF is missing a page.\nFollow up: tomorrow",
  thread_tracker = "Threads:\nt1 [billing/neutral] Invoice copy -> awaiting follow-up\n"
    .. "t2 [support/negative] Server down -> awaiting follow-up\nMost urgent: t2\n\n"
    .. "Threads:\nt7 [sales/positive] Quote request -> awaiting follow-up\nt8 [spam/neutral] Free prize -> closed\nMost urgent: t7",
}
local TOKENS = {msg_classifier = 4, sentiment_analyst = 4, responder = 60, followup_scheduler = 4, thread_tracker = 6}
for name, examples in pairs(EXAMPLES) do
  Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(examples)
    :temperature(name == "responder" and 0.2 or 0):max_tokens(TOKENS[name]):max_conversation_length(0):build()
end
local tracker = Agent.get("thread_tracker")

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (the triage workflow's agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

local triage = Workflow.builder():name("triage_message"):sequential()
  :add_step{name = "category", type = "agent", agent = "msg_classifier", input = "Email: {{subject}}. {{body}}\nCategory:"}
  :add_step{name = "sentiment", type = "agent", agent = "sentiment_analyst", input = "Email: {{subject}}. {{body}}\nMood:"}
  :add_step{name = "reply", type = "agent", agent = "responder", input = "Email from {{from}}: {{subject}}. {{body}}\nReply:"}
  :add_step{name = "followup", type = "agent", agent = "followup_scheduler",
            input = "Email: {{subject}}. {{body}}\nFollow up:"}
  :build()

-- labels the sample inbox should get (only compared when the sample inbox is used)
local SAMPLE_LABELS = not ARGS.inbox and {m1 = "support", m2 = "sales", m3 = "billing", m4 = "spam"} or nil
local tally = {categories = 0, sentiments = 0, replies = 0, followups = 0, matching = 0}

-- one "run": triage a batch, persist threads in State and artifacts in the session -------------------
local function process_batch(run_no, batch, session_id)
  local threads = State.load(SCOPE, "threads", {})
  for _, msg in ipairs(batch) do
    local r = must(triage:execute({subject = msg.subject, body = msg.body, from = msg.from}), "triage of " .. msg.id)
    local o = r.outputs or {}
    local category, sentiment, when = pick(o.category, CATEGORIES), pick(o.sentiment, SENTIMENTS), pick(o.followup, WHEN)
    local reply = answer_line(o.reply, EXAMPLES.responder)
    if SAMPLE_LABELS and category and SAMPLE_LABELS[msg.id] == category then tally.matching = tally.matching + 1 end
    if category then tally.categories = tally.categories + 1 else category = "support" end
    if sentiment then tally.sentiments = tally.sentiments + 1 else sentiment = "neutral" end
    if when then tally.followups = tally.followups + 1 else when = category == "spam" and "next week" or "tomorrow" end
    if reply ~= "" and category ~= "spam" then tally.replies = tally.replies + 1 end
    if reply == "" or category == "spam" then
      reply = category == "spam" and "(no reply: filtered as spam)"
        or "(fallback) Thank you for your message; we will get back to you shortly."
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
local urgent = answer_line(tracker:execute({text = "Threads:\n" .. table.concat(lines, "\n") .. "\nMost urgent:"}).text)
urgent = threads[urgent] and urgent or nil
completion:unregister() -- hooks outlive a kernel cell otherwise
local status = string.format("%d threads tracked; most urgent: %s", #ids,
  urgent and (urgent .. " (" .. threads[urgent].subject .. ", model)") or "(fallback: the tracker named no thread)")
Metrics.set("categories_by_model", tally.categories)
Metrics.set("sentiments_by_model", tally.sentiments)
Metrics.set("followups_by_model", tally.followups)
Metrics.set("replies_by_model", tally.replies)
Metrics.set("label_fallbacks", 3 * #ids - tally.categories - tally.sentiments - tally.followups)
Metrics.set("urgent_by_model", urgent and 1 or 0)
if SAMPLE_LABELS then Metrics.set("categories_matching_sample", tally.matching) end
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
