-- process-orchestrator (layer 5): run an order-fulfilment process as nested workflows three deep
-- (a loop over orders -> a per-order pipeline -> a conditional router), watched by hooks and
-- events, with error recovery for orders that fail.
--
-- Eight agents: intake, router, express/standard/customs handlers, QA inspector, recovery, reporter.
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
    :temperature(0):max_tokens(tokens):max_conversation_length(0):build()
end
local intake = agent("intake_agent", "You summarize a batch of orders for a warehouse team in one sentence.", 64)
agent("order_router", "Pick a shipping lane. Answer with one word: express, standard or international.", 8)
agent("express_handler", "You plan same-day express dispatch in one or two sentences.", 64)
agent("standard_handler", "You plan standard ground shipping in one or two sentences.", 64)
agent("customs_handler", "You list the customs documents an international parcel needs, briefly.", 64)
agent("qa_inspector", "You check a fulfilment plan. Reply 'approved' or 'rejected' and one reason.", 48)
local recovery = agent("recovery_agent", "You suggest one concrete recovery action for a failed order.", 64)
local reporter = agent("ops_reporter", "You write a three-sentence operations report.", 96)

-- monitoring: hooks and events -------------------------------------------------------------------
local monitor = {stages = {}, agent_calls = 0, workflow_errors = 0, events = {}}
local hooks = {
  Hook.register("BeforeWorkflowStage", function(ctx)
    local t = (ctx.data or {}).step_type or "step"
    monitor.stages[t] = (monitor.stages[t] or 0) + 1
  end, "low"),
  Hook.register("AfterAgentExecution", function() monitor.agent_calls = monitor.agent_calls + 1 end, "low"),
  Hook.register("WorkflowError", function() monitor.workflow_errors = monitor.workflow_errors + 1 end),
}
local wf_events = Event.subscribe("workflow.*")
local my_events = Event.subscribe("orchestrator.*")

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
    :add_step{name = "lane_hint", type = "agent", agent = "order_router", input = "Order {{order}}. Lane?"}
    :condition(lane_is("express"))
    :add_then_step{name = "express_plan", type = "agent", agent = "express_handler", input = "Express order: {{order}}"}
    :add_branch(lane_is("international"),
                {{name = "customs_plan", type = "agent", agent = "customs_handler", input = "International order: {{order}}"}})
    :add_else_step{name = "standard_plan", type = "agent", agent = "standard_handler", input = "Standard order: {{order}}"}
    :build()

  -- level 2: one order's pipeline -----------------------------------------------------------------
  local process = Workflow.builder():name("process_order"):sequential()
    :add_step{name = "routing", type = "workflow", workflow = route, input = {order = "{{order}}"}}
    :add_step{name = "qa", type = "agent", agent = "qa_inspector", input = "Plan: {{routing}}\nApprove?"}
    :build()

  -- level 1: the loop over every order --------------------------------------------------------------
  local fulfilment = Workflow.builder():name("fulfilment"):loop():with_collection(ORDERS)
    :error_strategy("continue")
    :add_step{name = "order", type = "workflow", workflow = process, input = {order = "{{loop_value}}"}}
    :build()

  local batch_note = trim(intake:execute({text = "Orders:\n" .. table.concat(ORDERS, "\n")}).text)
  local res = fulfilment:execute({})

  -- results per order, errors found in the step records ----------------------------------------------
  local failed_step = {}
  for _, s in ipairs(res.steps or {}) do
    if s.success == false and s.iteration then failed_step[s.iteration] = s.error or "failed" end
  end
  local orders = {}
  for i, raw in ipairs(ORDERS) do
    local it = (res.iterations or {})[i] or {}
    local o = parse_order(raw)
    local entry = {record = raw, id = o and o.id or raw:match("^(ORD%-%d+)") or ("order " .. i), lane = o and o.lane or "?"}
    if it.success == false or failed_step[i] then
      entry.status, entry.error = "failed", tostring(failed_step[i] or "failed")
      if o ~= nil then -- a well-formed order must not fail: that is an infrastructure error
        error("order " .. entry.id .. " failed unexpectedly: " .. entry.error)
      end
      local fix = trim(recovery:execute({text = "Order record: " .. raw .. "\nProblem: malformed record."
        .. "\nWhat should the team do?"}).text)
      entry.recovery = fix ~= "" and fix or "Return the record to the sender for correction."
      Event.publish("orchestrator.order.recovered", {order = entry.id})
    else
      local qa = trim(((it.outputs or {}).order) or "")
      entry.status = qa:lower():find("reject") and "needs review" or "fulfilled"
      entry.qa = qa ~= "" and clip(qa, 160) or "(no QA verdict)"
      Event.publish("orchestrator.order.completed", {order = entry.id, lane = entry.lane})
    end
    orders[#orders + 1] = entry
  end
  return batch_note, res, orders
end

local ok, batch_note, res, orders = pcall(run)
for _, h in ipairs(hooks) do h:unregister() end -- hooks outlive a kernel cell otherwise
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
for _, o in ipairs(orders) do lines[#lines + 1] = string.format("%s %s: %s", o.id, o.lane, o.status) end
local report = trim(reporter:execute({text = "Results:\n" .. table.concat(lines, "\n") .. "\nWrite the report."}).text)
if report == "" then report = table.concat(lines, "; ") .. "." end
if batch_note == "" then batch_note = string.format("%d orders received.", #ORDERS) end

local md = {"# Fulfilment run", "", "> " .. clip(batch_note, 300), "", "| order | lane | status | note |", "|---|---|---|---|"}
for _, o in ipairs(orders) do
  md[#md + 1] = string.format("| %s | %s | %s | %s |", o.id, o.lane, o.status,
                              (clip(o.qa or o.recovery or "", 120):gsub("|", "/")))
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
