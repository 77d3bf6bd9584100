-- process-orchestrator (layer 5): run an order-fulfilment process as nested workflows three deep
-- (a loop over orders -> a per-order pipeline -> a conditional router), watched by hooks and
-- events, with error recovery for orders that fail.
--
-- Eight agents: intake, router, express/standard/customs handlers, QA inspector, recovery, reporter.
-- Prompts are few-shot completions, one line per call, so small base models can answer them; an
-- AfterAgentExecution hook collects every reply, and Metrics reports the model's answers and the
-- fallbacks.
--
--   llmspell apps run process-orchestrator -- --output-dir ./out/orchestrator [--orders orders.txt]

local OUT = (ARGS["output-dir"] or "llmspell-output/process-orchestrator"):gsub("/+$", "")
local LANES = {"express", "international", "standard"}

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
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Plan:", "QA:") or copies
-- 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end
-- "ORD-101|express|2 USB-C cables|Berlin" -> table, or nil and the reason
local function parse_order(s)
  local id, lane, items, city = tostring(s or ""):match("^(ORD%-%d+)|(%a+)|([^|]+)|([^|]+)$")
  if not id then return nil, "malformed order record '" .. tostring(s) .. "'" end
  return {id = id, lane = lane, items = items, city = city}
end

local ORDERS = {
  "ORD-101|express|2 USB-C cables|Berlin",
  "ORD-102|standard|1 desk lamp|Hamburg",
  "ORD-103|international|3 paperback books|Toronto",
  "ORD-104|standard|broken record",
  "ORD-105|standard|1 office chair|Munich",
}

if ARGS.orders then -- one "ORD-<n>|<lane>|<items>|<city>" record per line
  ORDERS = {}
  for line in Tool.invoke("file_operations", {operation = "read", path = ARGS.orders}).text:gmatch("[^\r\n]+") do
    if trim(line) ~= "" then ORDERS[#ORDERS + 1] = trim(line) end
  end
end

-- agents --------------------------------------------------------------------------------------
local function agent(name, prompt, tokens)
  return Agent.builder():name(name):model("openai/gpt-4o-mini"):system_prompt(prompt)
    :temperature(name:find("handler") and 0.2 or 0):max_tokens(tokens):max_conversation_length(0):build()
end
local EXAMPLES = {
  intake_agent = "Orders:\nORD-1|standard|1 rug|Paris\nORD-2|express|1 phone|Rome\nFirst to ship: ORD-2\n\n"
    .. "Orders:\nORD-5|express|2 pens|Oslo\nORD-6|international|1 hat|Lima\nFirst to ship: ORD-5",
  order_router = "Order: ORD-7|express|1 phone case|Vienna\nLane: express\n\nOrder: ORD-5|international|2 scarves|Oslo\n"
    .. "Lane: international\n\nOrder: ORD-8|standard|1 kettle|Porto\nLane: standard",
  express_handler = "Order: ORD-7|express|1 phone case|Vienna\nPlan: courier pickup today at 14:00, delivered in Vienna tonight\n\n"
    .. "Order: ORD-9|express|2 notebooks|Lyon\nPlan: packed first, on the 16:00 same-day van to Lyon",
  standard_handler = "Order: ORD-8|standard|1 kettle|Porto\nPlan: ground parcel, ships tomorrow, 3-5 days to Porto\n\n"
    .. "Order: ORD-12|standard|4 mugs|Ghent\nPlan: boxed with padding, ground parcel, 2-4 days to Ghent",
  customs_handler = "Order: ORD-5|international|2 scarves|Oslo\nPlan: commercial invoice, CN22 customs form\n\n"
    .. "Order: ORD-6|international|1 laptop|Sydney\nPlan: commercial invoice, CN23 form, battery declaration",
  qa_inspector = "Plan: courier pickup at 14:00, delivered in Vienna the same day\nQA: approved\n\n"
    .. "Plan: (nothing planned)\nQA: rejected\n\nPlan: ground parcel, ships tomorrow, 3-5 days to Porto\nQA: approved\n\n"
    .. "Plan: commercial invoice, CN22 customs form\nQA: approved",
  recovery_agent = "Record: ORD-77|express|1 lamp\nAction: ask the sender of ORD-77 for the delivery city\n\n"
    .. "Record: ORD-78|2 chairs|Bern\nAction: ask the sender of ORD-78 which lane to use",
  ops_reporter = "Results: ORD-1 express fulfilled; ORD-2 standard fulfilled; ORD-3 standard failed\n"
    .. "Headline: 2 of 3 orders out; ORD-3 needs a fixed record\n\n"
    .. "Results: ORD-8 international fulfilled; ORD-9 express needs review\nHeadline: ORD-8 shipped abroad; ORD-9 held for review",
}
local TOKENS = {intake_agent = 6, order_router = 4, qa_inspector = 4}
for name, examples in pairs(EXAMPLES) do
  agent(name, examples, TOKENS[name] or 40)
end
local intake, recovery, reporter = Agent.get("intake_agent"), Agent.get("recovery_agent"), Agent.get("ops_reporter")

-- monitoring: hooks and events -------------------------------------------------------------------
local monitor = {stages = {}, agent_calls = 0, workflow_errors = 0, events = {}}
local replies = {} -- order id -> {router = ..., plan = ...}, collected by the AfterAgentExecution hook
local hooks = {
  Hook.register("BeforeWorkflowStage", function(ctx)
    local t = (ctx.data or {}).step_type or "step"
    monitor.stages[t] = (monitor.stages[t] or 0) + 1
  end, "low"),
  Hook.register("AfterAgentExecution", function(ctx)
    monitor.agent_calls = monitor.agent_calls + 1
    local d = ctx.data or {}
    local id = tostring(((d.input or {}).text) or ""):match("^Order: (ORD%-%d+)")
    if id then
      local slot = d.agent == "order_router" and "router" or "plan"
      replies[id] = replies[id] or {}
      replies[id][slot] = ((d.output or {}).text) or ""
    end
  end, "low"),
  -- Every call ends at the end of its line, with a fixed seed: the builder has no such settings,
  -- so this hook adds them (the nested workflows' agent steps included).
  Hook.register("BeforeAgentExecution", function(ctx)
    local input = ctx.data.input
    input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
    return {type = "modified", data = {input = input}}
  end),
  Hook.register("WorkflowError", function() monitor.workflow_errors = monitor.workflow_errors + 1 end),
}
local wf_events = Event.subscribe("workflow.*")
local my_events = Event.subscribe("orchestrator.*")

local tally
local function run()
  -- level 3: conditional routing ----------------------------------------------------------------
  local function lane_is(name)
    return function(ctx)
      local o = parse_order((ctx.input or {}).order)
      return o ~= nil and o.lane == name
    end
  end
  local route = Workflow.builder():name("route_order"):conditional()
    :add_step{name = "validate", type = "function", fn = function(ctx)
      local o, why = parse_order((ctx.input or {}).order)
      if not o then error(why, 0) end
      return o.id .. " validated"
    end}
    :add_step{name = "lane_hint", type = "agent", agent = "order_router", input = "Order: {{order}}\nLane:"}
    :condition(lane_is("express"))
    :add_then_step{name = "express_plan", type = "agent", agent = "express_handler", input = "Order: {{order}}\nPlan:"}
    :add_branch(lane_is("international"),
                {{name = "customs_plan", type = "agent", agent = "customs_handler", input = "Order: {{order}}\nPlan:"}})
    :add_else_step{name = "standard_plan", type = "agent", agent = "standard_handler", input = "Order: {{order}}\nPlan:"}
    :build()

  -- level 2: one order's pipeline -----------------------------------------------------------------
  local process = Workflow.builder():name("process_order"):sequential()
    :add_step{name = "routing", type = "workflow", workflow = route, input = {order = "{{order}}"}}
    :add_step{name = "qa", type = "agent", agent = "qa_inspector", input = "Plan: {{routing}}\nQA:"}
    :build()

  -- level 1: the loop over every order --------------------------------------------------------------
  local fulfilment = Workflow.builder():name("fulfilment"):loop():with_collection(ORDERS)
    :error_strategy("continue")
    :add_step{name = "order", type = "workflow", workflow = process, input = {order = "{{loop_value}}"}}
    :build()

  local first = answer_line(intake:execute({text = "Orders:\n" .. table.concat(ORDERS, "\n") .. "\nFirst to ship:"}).text)
  first = first:match("^(ORD%-%d+)")
  local batch_note = ""
  for _, raw in ipairs(ORDERS) do if first and raw:find(first .. "|", 1, true) == 1 then batch_note = first end end
  Metrics.set("first_to_ship_by_model", batch_note ~= "" and 1 or 0)
  batch_note = batch_note ~= "" and ("First to ship: " .. batch_note .. " (model)") or ""
  local res = fulfilment:execute({})

  -- results per order, errors found in the step records ----------------------------------------------
  local failed_step = {}
  for _, s in ipairs(res.steps or {}) do
    if s.success == false and s.iteration then failed_step[s.iteration] = s.error or "failed" end
  end
  local orders = {}
  tally = {lanes = 0, lanes_match = 0, plans = 0, verdicts = 0}
  for i, raw in ipairs(ORDERS) do
    local it = (res.iterations or {})[i] or {}
    local o = parse_order(raw)
    local entry = {record = raw, id = o and o.id or raw:match("^(ORD%-%d+)") or ("order " .. i), lane = o and o.lane or "?"}
    if it.success == false or failed_step[i] then
      entry.status, entry.error = "failed", tostring(failed_step[i] or "failed")
      if o ~= nil then -- a well-formed order must not fail: that is an infrastructure error
        error("order " .. entry.id .. " failed unexpectedly: " .. entry.error)
      end
      local fix = answer_line(recovery:execute({text = "Record: " .. raw .. "\nAction:"}).text, EXAMPLES.recovery_agent)
      Metrics.set("recovery_by_model", fix ~= "" and 1 or 0)
      entry.recovery = fix ~= "" and (fix .. " (model)") or "(fallback) Return the record to the sender for correction."
      Event.publish("orchestrator.order.recovered", {order = entry.id})
    else
      local qa = answer_line(((it.outputs or {}).order) or ""):lower():match("^(%a+)")
      qa = (qa == "approved" or qa == "rejected") and qa or nil
      local r = replies[entry.id] or {}
      local lane = answer_line(r.router):lower():match("^(%a+)")
      local plan = answer_line(r.plan, EXAMPLES[({express = "express_handler", international = "customs_handler"})[entry.lane]
                                                  or "standard_handler"])
      entry.lane_by_model = lane
      entry.plan = plan ~= "" and clip(plan, 120) or "(fallback) no plan from the model"
      entry.status = qa == "rejected" and "needs review" or "fulfilled"
      entry.qa = qa and (qa .. " (model)") or "(fallback: no QA verdict; fulfilled by default)"
      tally.lanes = tally.lanes + ((lane == "express" or lane == "standard" or lane == "international") and 1 or 0)
      tally.lanes_match = tally.lanes_match + (lane == entry.lane and 1 or 0)
      tally.plans = tally.plans + (plan ~= "" and 1 or 0)
      tally.verdicts = tally.verdicts + (qa and 1 or 0)
      Event.publish("orchestrator.order.completed", {order = entry.id, lane = entry.lane})
    end
    orders[#orders + 1] = entry
  end
  return batch_note, res, orders
end

local ok, batch_note, res, orders = pcall(run)
if not ok then for _, h in ipairs(hooks) do h:unregister() end end
local function drain(sub)
  local n = 0
  while true do
    local e = Event.receive(sub, 0)
    if e == nil then break end
    monitor.events[e.event_type] = (monitor.events[e.event_type] or 0) + 1
    n = n + 1
  end
  Event.unsubscribe(sub)
  return n
end
local n_wf, n_mine = drain(wf_events), drain(my_events)
if not ok then error(batch_note, 0) end

-- report ------------------------------------------------------------------------------------------
local counts = {}
for _, o in ipairs(orders) do counts[o.status] = (counts[o.status] or 0) + 1 end
local lines = {}
for _, o in ipairs(orders) do lines[#lines + 1] = string.format("%s %s %s", o.id, o.lane, o.status) end
local report = answer_line(reporter:execute({text = "Results: " .. table.concat(lines, "; ") .. "\nHeadline:"}).text,
                           EXAMPLES.ops_reporter)
for _, h in ipairs(hooks) do h:unregister() end -- hooks outlive a kernel cell otherwise
Metrics.set("headline_by_model", report ~= "" and 1 or 0)
Metrics.set("lanes_by_model", tally.lanes)
Metrics.set("lanes_matching_record", tally.lanes_match)
Metrics.set("plans_by_model", tally.plans)
Metrics.set("qa_verdicts_by_model", tally.verdicts)
local valid = 0
for _, o in ipairs(orders) do if o.status ~= "failed" then valid = valid + 1 end end
Metrics.set("fallbacks", 3 * valid - tally.lanes - tally.plans - tally.verdicts) -- lane, plan and QA per valid order
report = report ~= "" and (report .. " (model)") or ("(fallback) " .. table.concat(lines, "; ") .. ".")
if batch_note == "" then batch_note = string.format("%d orders received (fallback: the intake named no order).", #ORDERS) end

local md = {"# Fulfilment run", "", "> " .. clip(batch_note, 300), "",
            "| order | lane | router said | plan | QA / recovery | status |", "|---|---|---|---|---|---|"}
for _, o in ipairs(orders) do
  md[#md + 1] = string.format("| %s | %s | %s | %s | %s | %s |", o.id, o.lane, o.lane_by_model or "-",
                              (clip(o.plan or "-", 100):gsub("|", "/")), (clip(o.qa or o.recovery or "", 120):gsub("|", "/")),
                              o.status)
end
md[#md + 1] = ""
md[#md + 1] = "## Operations report"
md[#md + 1] = ""
md[#md + 1] = report
write(OUT .. "/report.md", table.concat(md, "\n") .. "\n")
write(OUT .. "/orders.json", JSON.stringify(orders, {indent = 2}))
write(OUT .. "/monitoring.json", JSON.stringify({stages = monitor.stages, agent_calls = monitor.agent_calls,
  workflow_errors = monitor.workflow_errors, events = monitor.events,
  loop = {break_reason = res.metadata and res.metadata.extra and res.metadata.extra.break_reason,
          execution_ms = res.metadata and res.metadata.execution_time_ms}}, {indent = 2}))

print("== Process orchestrator summary ==")
print(string.format("orders processed: %d (fulfilled %d, needs review %d, failed and recovered %d)", #orders,
                    counts["fulfilled"] or 0, counts["needs review"] or 0, counts["failed"] or 0))
print(string.format("monitoring: %d agent calls seen by hooks, %d workflow events, %d process events",
                    monitor.agent_calls, n_wf, n_mine))
print("report written to " .. OUT .. "/report.md")
