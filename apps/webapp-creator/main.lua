-- webapp-creator (layer 6): turn a one-line requirement into a generated web project (30+ files)
-- through a 20-agent pipeline. Each phase reads what earlier phases decided from State.
--
-- Phases: analysis (4 agents, sequential) -> design (6, parallel) -> code (7, parallel)
--         -> delivery (3, sequential).
--
-- Every agent writes one line from a few-shot, completion-style prompt (small base models can do
-- that); the app builds the files from templates and those lines. Metrics reports how many lines
-- the model wrote and how many fell back.
--
--   llmspell apps run webapp-creator -- --output-dir ./out/webapp --requirements "a recipe sharing site"

local OUT = (ARGS["output-dir"] or "llmspell-output/webapp-creator"):gsub("/+$", "")
local REQUIREMENTS = ARGS.requirements or "a small todo list web app where users sign in and share lists"
local PROJECT = ARGS.name or "taskboard"
local SCOPE = "webapp:" .. PROJECT

-- helpers -----------------------------------------------------------------------------------
local function trim(s) return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end
local function one_line(s) return trim((tostring(s or ""):gsub("%s+", " "))) end
local function clip(s, n)
  s = one_line(s)
  if #s > n then return s:sub(1, n - 3) .. "..." end
  return s
end
local written = {}
local function write(rel, content)
  local r = Tool.invoke("file_operations", {operation = "write", path = OUT .. "/" .. PROJECT .. "/" .. rel, input = content})
  if not r.success then error("could not write " .. rel .. ": " .. tostring(r.text)) end
  written[#written + 1] = rel
end
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end
-- The first line of a reply; "" when it repeats the prompt's scaffold ("Idea:", "Table:") or copies
-- 16+ characters of the few-shot examples verbatim (an echo, not an answer).
local function answer_line(text, examples)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a[%w ]*:%s") or (#line >= 16 and tostring(examples or ""):find(line, 1, true)) then return "" end
  return line
end
local function comment_block(prefix, text)
  local out = {}
  for line in (trim(text) .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = prefix .. line end
  return table.concat(out, "\n") .. "\n"
end

-- the 20 agents: {name, label the answer follows, two worked examples} ----------------------------
-- Examples are about other projects (a recipe site, a bike rental); the user text ends at the label.
local ROLES = {
  -- analysis
  {"requirements_analyst", "User story", "Idea: a recipe sharing site\nUser story: As a cook, I want to save my recipes so that I can find them later.\n\n"
    .. "Idea: a bike rental app\nUser story: As a rider, I want to see free bikes nearby so that I can rent one quickly."},
  {"product_manager", "First feature", "Idea: a recipe sharing site\nFirst feature: publish a recipe with photos and ingredients\n\n"
    .. "Idea: a bike rental app\nFirst feature: a map of free bikes near the rider"},
  {"ux_designer", "Main screen", "Idea: a recipe sharing site\nMain screen: recipe editor\n\n"
    .. "Idea: a bike rental app\nMain screen: bike map\n\nIdea: a weather dashboard\nMain screen: forecast grid"},
  {"architect", "Database", "Idea: a recipe sharing site\nDatabase: PostgreSQL\n\nIdea: a bike rental app\nDatabase: Redis\n\n"
    .. "Idea: a personal expense tracker\nDatabase: SQLite"},
  -- design
  {"database_designer", "Table", "Feature: publish a recipe with photos and ingredients\nTable: recipes(id, author_id, title, ingredients, photo_url)\n\n"
    .. "Feature: a map of free bikes near the rider\nTable: bikes(id, latitude, longitude, is_free)"},
  {"api_designer", "Endpoint", "Feature: publish a recipe with photos and ingredients\nEndpoint: POST /api/recipes - publish a recipe\n\n"
    .. "Feature: a map of free bikes near the rider\nEndpoint: GET /api/bikes?near=lat,lon - free bikes nearby"},
  {"frontend_lead", "Component", "Feature: publish a recipe with photos and ingredients\nComponent: RecipeEditor\n\n"
    .. "Feature: a map of free bikes near the rider\nComponent: BikeMap"},
  {"backend_lead", "Module", "Idea: a recipe sharing site\nModule: recipes.py\n\nIdea: a bike rental app\nModule: rentals.py\n\n"
    .. "Idea: a weather dashboard\nModule: forecasts.py"},
  {"security_reviewer", "Main threat", "Idea: a recipe sharing site\nMain threat: fake authors\n\n"
    .. "Idea: a bike rental app\nMain threat: stolen bikes\n\nIdea: a payroll tool\nMain threat: leaked salaries"},
  {"test_planner", "Test name", "Idea: a recipe sharing site\nTest name: test_publish_recipe\n\n"
    .. "Idea: a bike rental app\nTest name: test_rent_free_bike\n\nIdea: a weather dashboard\nTest name: test_show_forecast"},
  -- code
  {"html_writer", "HTML", "Component: RecipeEditor\nHTML: <form id=\"recipe-editor\"><input name=\"title\"><button>Publish</button></form>\n\n"
    .. "Component: BikeMap\nHTML: <div id=\"bike-map\" class=\"map\"></div>"},
  {"css_writer", "Accent color", "Idea: a recipe sharing site\nAccent color: tomato\n\nIdea: a bike rental app\nAccent color: seagreen\n\n"
    .. "Idea: a night sky guide\nAccent color: midnightblue"},
  {"js_writer", "JS", "Endpoint: POST /api/recipes - publish a recipe\nJS: fetch('/api/recipes', {method: 'POST', body: JSON.stringify(recipe)})\n\n"
    .. "Endpoint: GET /api/bikes?near=lat,lon - free bikes nearby\nJS: fetch('/api/bikes?near=' + lat + ',' + lon).then(r => r.json())"},
  {"model_writer", "Python", "Table: recipes(id, author_id, title, ingredients, photo_url)\n"
    .. "Python: Recipe = namedtuple('Recipe', ['id', 'author_id', 'title', 'ingredients', 'photo_url'])\n\n"
    .. "Table: bikes(id, latitude, longitude, is_free)\nPython: Bike = namedtuple('Bike', ['id', 'latitude', 'longitude', 'is_free'])"},
  {"route_writer", "Python", "Endpoint: POST /api/recipes - publish a recipe\nPython: @app.post('/api/recipes')\n\n"
    .. "Endpoint: GET /api/bikes?near=lat,lon - free bikes nearby\nPython: @app.get('/api/bikes')"},
  {"test_writer", "Python", "Test name: test_publish_recipe\nPython: def test_publish_recipe(client):\n\n"
    .. "Test name: test_rent_free_bike\nPython: def test_rent_free_bike(client):"},
  {"config_writer", "Port", "Project recipes: a recipe sharing site\nPort: 5000\n\nProject bikeshare: a bike rental app\nPort: 8080"},
  -- delivery
  {"devops_engineer", "Host", "Database: PostgreSQL\nHost: Heroku\n\nDatabase: Redis\nHost: Fly.io\n\nDatabase: SQLite\nHost: a Raspberry Pi"},
  {"docs_writer", "Tagline", "Project recipes: a recipe sharing site\nTagline: Cook, share and find recipes with friends.\n\n"
    .. "Project bikeshare: a bike rental app\nTagline: Find a free bike near you and ride in a minute."},
  {"code_reviewer", "Improvement", "Endpoint: POST /api/recipes - publish a recipe\nImprovement: validate the ingredient list before saving\n\n"
    .. "Endpoint: GET /api/bikes?near=lat,lon - free bikes nearby\nImprovement: cap the search radius so the query stays fast"},
}
local EXAMPLES, LABEL = {}, {}
for _, r in ipairs(ROLES) do
  EXAMPLES[r[1]], LABEL[r[1]] = r[3], r[2]
  Agent.builder():name(r[1]):model(r[1]:find("writer") and "openai/gpt-4o-mini" or "anthropic/claude-3-5-haiku-latest")
    :system_prompt(r[3]):temperature(0.2):max_tokens(48):max_conversation_length(0):build()
end

-- Every call ends at the end of its line, with a fixed seed: the builder has no such settings, so a
-- BeforeAgentExecution hook adds them (every workflow's agent steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

State.clear(SCOPE) -- every run designs the project from scratch
local function remember(key, value) State.save(SCOPE, key, value) end
local function recall(key, default) return State.load(SCOPE, key, default) end
local by_model, fallbacks = 0, {}
-- Keep one agent's line in State (or "" when it fell back), counting who wrote it.
local function keep(key, agent_name, reply)
  local line = answer_line(reply, EXAMPLES[agent_name])
  if line ~= "" then by_model = by_model + 1 else fallbacks[#fallbacks + 1] = agent_name end
  remember(key, line)
  return line
end
local function step(name, agent_name, prompt)
  return {name = name, type = "agent", agent = agent_name, input = prompt .. "\n" .. LABEL[agent_name] .. ":"}
end

-- phase 1: analysis (sequential; each step builds on the previous) ------------------------------------
local a = must(Workflow.builder():name("analysis"):sequential()
  :add_step(step("story", "requirements_analyst", "Idea: {{requirements}}"))
  :add_step(step("feature", "product_manager", "Idea: {{requirements}}"))
  :add_step(step("screen", "ux_designer", "Idea: {{requirements}}"))
  :add_step(step("stack", "architect", "Idea: {{requirements}}"))
  :build():execute({requirements = REQUIREMENTS}), "analysis phase")
keep("story", "requirements_analyst", a.outputs.story)
local feature = keep("feature", "product_manager", a.outputs.feature)
keep("screen", "ux_designer", a.outputs.screen)
keep("stack", "architect", a.outputs.stack)
if feature == "" then feature = REQUIREMENTS end

-- phase 2: design (parallel; every designer reads the analysis from State) ----------------------------
local DESIGN = {
  {"table", "database_designer", "Feature: {{feature}}"}, {"endpoint", "api_designer", "Feature: {{feature}}"},
  {"component", "frontend_lead", "Feature: {{feature}}"}, {"module", "backend_lead", "Idea: {{requirements}}"},
  {"security", "security_reviewer", "Idea: {{requirements}}"}, {"test_case", "test_planner", "Idea: {{requirements}}"},
}
local design = Workflow.builder():name("design"):parallel():max_concurrency(6)
for _, d in ipairs(DESIGN) do design:add_step(step(d[1], d[2], d[3])) end
local dr = must(design:build():execute({feature = feature, requirements = REQUIREMENTS}), "design phase")
for _, d in ipairs(DESIGN) do keep(d[1], d[2], dr.outputs[d[1]]) end

-- phase 3: code (parallel writers; inputs come from the design in State) -------------------------------
local component = recall("component", ""):match("^(%u%w+)") or "TaskList"
local endpoint = recall("endpoint", "") ~= "" and recall("endpoint") or "GET /api/tasks - list tasks"
local CODE = {
  {"code:html", "html_writer", "Component: " .. component}, {"code:css", "css_writer", "Idea: " .. REQUIREMENTS},
  {"code:js", "js_writer", "Endpoint: " .. endpoint},
  {"code:model", "model_writer", "Table: " .. (recall("table", "") ~= "" and recall("table") or "tasks(id, title, done)")},
  {"code:route", "route_writer", "Endpoint: " .. endpoint},
  {"code:test", "test_writer", "Test name: " .. (recall("test_case", ""):match("^(test_[%w_]+)$") or "test_add_task")},
  {"code:config", "config_writer", "Project " .. PROJECT .. ": " .. REQUIREMENTS},
}
local code = Workflow.builder():name("code"):parallel():max_concurrency(7)
for _, c in ipairs(CODE) do code:add_step(step(c[1], c[2], c[3])) end
local cr = must(code:build():execute({}), "code phase")
local code_lines = 0
for _, c in ipairs(CODE) do if keep(c[1], c[2], cr.outputs[c[1]]) ~= "" then code_lines = code_lines + 1 end end

-- phase 4: delivery (sequential) -----------------------------------------------------------------------
local del = must(Workflow.builder():name("delivery"):sequential()
  :add_step(step("deploy", "devops_engineer", "Database: {{stack}}"))
  :add_step(step("tagline", "docs_writer", "Project {{project}}: {{requirements}}"))
  :add_step(step("improvement", "code_reviewer", "Endpoint: {{endpoint}}"))
  :build():execute({stack = recall("stack", "") ~= "" and recall("stack") or "SQLite", project = PROJECT,
                    requirements = REQUIREMENTS, endpoint = endpoint}), "delivery phase")
keep("deploy", "devops_engineer", del.outputs.deploy)
keep("tagline", "docs_writer", del.outputs.tagline)
keep("improvement", "code_reviewer", del.outputs.improvement)
completion:unregister() -- hooks outlive a kernel cell otherwise
Metrics.set("lines_by_model", by_model)
Metrics.set("line_fallbacks", #fallbacks)
Metrics.set("code_lines_by_model", code_lines)

-- the project tree: templates plus the model's lines; a line that fell back says so -------------------
local function said(key, what) -- the model's line, or a marked fallback
  local v = recall(key, "")
  return v ~= "" and v or ("(fallback: the model wrote no " .. what .. ")")
end
local function doc(title, key, what) return "# " .. title .. "\n\n" .. said(key, what) .. "\n" end
local tagline = recall("tagline", "")
write("README.md", "# " .. PROJECT .. "\n\n" .. (tagline ~= "" and tagline or REQUIREMENTS) .. "\n\n" .. REQUIREMENTS
  .. "\n\n## Layout\n\n- frontend/: static HTML, CSS and JavaScript\n- backend/: Python API\n- tests/: pytest suite\n"
  .. "- deploy/: container and proxy configuration\n- docs/: design documents\n")
write("docs/requirements.md", "# Requirements\n\n" .. REQUIREMENTS .. "\n\n## User story\n\n" .. said("story", "user story") .. "\n")
write("docs/features.md", doc("First feature", "feature", "feature"))
write("docs/ux.md", doc("Main screen", "screen", "screen"))
write("docs/architecture.md", "# Architecture\n\nStatic frontend, Python API, database: " .. said("stack", "database choice") .. "\n")
write("docs/database.md", doc("Database", "table", "table"))
write("docs/api.md", doc("API", "endpoint", "endpoint"))
write("docs/frontend.md", doc("Frontend components", "component", "component"))
write("docs/backend.md", doc("Backend modules", "module", "module"))
write("docs/security.md", doc("Main threat", "security", "threat"))
write("docs/testing.md", doc("Test plan", "test_case", "test case"))
write("docs/deployment.md", "# Deployment\n\nHost: " .. said("deploy", "host") .. "\n")
write("docs/review.md", doc("Review", "improvement", "improvement"))

local function code_line(key, fallback) -- the model's line of code, or the template's
  local v = recall(key, "")
  return v ~= "" and v or fallback
end
write("frontend/index.html", "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>" .. PROJECT
  .. "</title><link rel=\"stylesheet\" href=\"styles.css\"></head>\n<body>\n<main id=\"app\">\n"
  .. code_line("code:html", "<!-- fallback: no markup from the model -->") .. "\n</main>\n<script src=\"app.js\"></script>\n</body>\n</html>\n")
local accent = recall("code:css", ""):match("^(%a+)$")
write("frontend/styles.css", ":root { --accent: " .. (accent or "steelblue") .. "; }" .. (accent and "" or "  /* fallback: no color from the model */")
  .. "\nbody { font-family: system-ui, sans-serif; margin: 2rem; }\nh1, button { color: var(--accent); }\n")
write("frontend/app.js", "// calls the API (" .. endpoint .. ")\nexport function load() {\n  return "
  .. code_line("code:js", "Promise.resolve([]) // fallback: no call from the model") .. ";\n}\n")
local components = {component}
for _, fallback in ipairs({"Header", "LoginForm", "TaskList", "TaskForm"}) do
  if #components >= 4 then break end
  if fallback ~= component then components[#components + 1] = fallback end
end
for _, c in ipairs(components) do
  write("frontend/components/" .. c .. ".js", "// " .. c .. " component for " .. PROJECT .. "\n"
    .. "export function " .. c .. "(props = {}) {\n  const el = document.createElement('section');\n"
    .. "  el.className = '" .. c:lower() .. "';\n  return el;\n}\n")
end
write("frontend/package.json", JSON.stringify({name = PROJECT .. "-frontend", version = "0.1.0", private = true,
                                               scripts = {start = "npx serve ."}}, {indent = 2}))

write("backend/__init__.py", '"""' .. PROJECT .. ' backend."""\n')
write("backend/models.py", "from collections import namedtuple\n\n# table: " .. said("table", "table") .. "\n"
  .. code_line("code:model", "Task = namedtuple('Task', ['id', 'title', 'done'])  # fallback: no model from the model") .. "\n")
write("backend/routes.py", "# " .. endpoint .. "\n# the decorator line is the model's; the app object comes from app.py\n\n"
  .. code_line("code:route", "# fallback: no route from the model") .. "\ndef handler():\n    return []\n")
write("backend/app.py", "\"\"\"Entry point of the " .. PROJECT .. " API.\"\"\"\n\nfrom backend import routes\n\n\ndef create_app():\n"
  .. "    return {\"routes\": routes}\n\n\nif __name__ == \"__main__\":\n    print(create_app())\n")
write("backend/security.py", comment_block("# main threat: ", said("security", "threat")) .. "\nSECURE_HEADERS = {\"X-Frame-Options\": \"DENY\"}\n")
write("backend/db.py", comment_block("# ", said("table", "table")) .. "\nimport sqlite3\n\n\ndef connect(path=\"" .. PROJECT .. ".db\"):\n"
  .. "    return sqlite3.connect(path)\n")
local port = tonumber(recall("code:config", ""):match("^(%d+)$"))
write("backend/settings.toml", "[server]\nport = " .. tostring(port or 8000) .. (port and "" or "  # fallback: no port from the model")
  .. "\n\n[storage]\ndatabase = \"" .. (recall("stack", "") ~= "" and recall("stack") or "SQLite") .. "\"\n")
write("backend/requirements.txt", "fastapi>=0.110\nuvicorn>=0.29\npytest>=8\n")
write("tests/__init__.py", "# tests for the " .. PROJECT .. " backend\n")
local test_def = recall("code:test", "")
write("tests/test_app.py", "# " .. said("test_case", "test case") .. "\n"
  .. (test_def:match("^def [%w_]+%(.*%):$") and (test_def .. "\n    assert client is not None\n")
      or "def test_placeholder():  # fallback: no test from the model\n    assert True\n"))
write("tests/test_plan.md", doc("Test cases", "test_case", "test case"))
write("deploy/Dockerfile", "FROM python:3.12-slim\nWORKDIR /app\nCOPY backend/requirements.txt .\nRUN pip install -r requirements.txt\n"
  .. "COPY . .\nCMD [\"python\", \"-m\", \"backend.app\"]\n")
write("deploy/docker-compose.yml", "services:\n  api:\n    build: ..\n    ports:\n      - \"8000:8000\"\n")
write("deploy/nginx.conf", "server {\n  listen 80;\n  location / { root /srv/frontend; }\n  location /api/ { proxy_pass http://api:8000; }\n}\n")
write("deploy/DEPLOY.md", "# Deploy\n\nBuild the image (deploy/Dockerfile) and run it on: " .. said("deploy", "host") .. "\n")
write(".gitignore", "__pycache__/\n*.db\nnode_modules/\n.env\n")
write("Makefile", "run:\n\tpython -m backend.app\n\ntest:\n\tpytest tests\n")

-- the manifest of what was generated, from State ---------------------------------------------------
local keys = State.list_keys(SCOPE)
write("project.json", JSON.stringify({name = PROJECT, requirements = REQUIREMENTS, files = written,
                                      state_keys = keys, agents = #ROLES, lines_by_model = by_model,
                                      fallbacks = JSON.array(fallbacks)}, {indent = 2}))


print("== Webapp creator summary ==")
print(string.format("agents in the pipeline: %d over 4 phases", #ROLES))
print(string.format("design decisions kept in state: %d keys", #keys))
print(string.format("files generated: %d (%d of %d agent lines by the model, %d of them code)", #written, by_model,
                    #ROLES, code_lines))
print("project written to " .. OUT .. "/" .. PROJECT)
