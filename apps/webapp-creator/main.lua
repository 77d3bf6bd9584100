-- webapp-creator (layer 6): turn a one-line requirement into a generated web project (30+ files)
-- through a 20-agent pipeline. Each phase reads what earlier phases decided from State.
--
-- Phases: analysis (4 agents, sequential) -> design (6, parallel) -> code (7, parallel)
--         -> delivery (3, sequential).
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
-- Code from a reply: the first fenced block if there is one, else the reply, else the fallback.
local function code_of(text, fallback)
  local block = tostring(text or ""):match("```[%w_+-]*\n(.-)```")
  local body = trim(block or text)
  return body ~= "" and body .. "\n" or fallback
end
local function comment_block(prefix, text)
  local out = {}
  for line in (trim(text) .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = prefix .. line end
  return table.concat(out, "\n") .. "\n"
end

-- the 20 agents ---------------------------------------------------------------------------------
local ROLES = {
  -- analysis
  {"requirements_analyst", "You turn a product idea into five short user stories."},
  {"product_manager", "You pick the three most important features for a first release, one line each."},
  {"ux_designer", "You describe the main screens of a web app in a few short lines."},
  {"architect", "You propose a simple web architecture (frontend, backend, database) in three lines."},
  -- design
  {"database_designer", "You design database tables. List each table with its columns on one line."},
  {"api_designer", "You design REST endpoints. List them as 'METHOD /path - purpose'."},
  {"frontend_lead", "You decide the frontend components of a web app, one per line."},
  {"backend_lead", "You decide the backend modules of a web app, one per line."},
  {"security_reviewer", "You list the top three security measures for a web app."},
  {"test_planner", "You list five important test cases for a web app."},
  -- code
  {"html_writer", "You write minimal, valid HTML5. Reply with code only."},
  {"css_writer", "You write small, clean CSS. Reply with code only."},
  {"js_writer", "You write small vanilla JavaScript. Reply with code only."},
  {"model_writer", "You write Python dataclasses for data models. Reply with code only."},
  {"route_writer", "You write small Python web route handlers. Reply with code only."},
  {"test_writer", "You write short pytest tests. Reply with code only."},
  {"config_writer", "You write short configuration files. Reply with the file content only."},
  -- delivery
  {"devops_engineer", "You write a short deployment guide in a few steps."},
  {"docs_writer", "You write a short README introduction for a project."},
  {"code_reviewer", "You review a generated project plan and list three improvements."},
}
for _, r in ipairs(ROLES) do
  Agent.builder():name(r[1]):model(r[1]:find("writer") and "openai/gpt-4o-mini" or "anthropic/claude-3-5-haiku-latest")
    :system_prompt(r[2]):temperature(0.2):max_tokens(96):max_conversation_length(0):build()
end

State.clear(SCOPE) -- every run designs the project from scratch
local function remember(key, value) State.save(SCOPE, key, value) end
local function recall(key, default) return State.load(SCOPE, key, default) end

-- phase 1: analysis (sequential; each step builds on the previous) ------------------------------------
local analysis = Workflow.builder():name("analysis"):sequential()
  :add_step{name = "stories", type = "agent", agent = "requirements_analyst", input = "Idea: {{requirements}}"}
  :add_step{name = "features", type = "agent", agent = "product_manager",
            input = "Idea: {{requirements}}\nUser stories:\n{{stories}}\nPick three features."}
  :add_step{name = "screens", type = "agent", agent = "ux_designer", input = "Features:\n{{features}}\nMain screens?"}
  :add_step{name = "architecture", type = "agent", agent = "architect",
            input = "Idea: {{requirements}}\nFeatures:\n{{features}}\nArchitecture?"}
  :build()
local a = must(analysis:execute({requirements = REQUIREMENTS}), "analysis phase")
for _, k in ipairs({"stories", "features", "screens", "architecture"}) do
  local v = trim(a.outputs[k])
  remember(k, v ~= "" and v or ("(no " .. k .. " produced)"))
end

-- phase 2: design (parallel; every designer reads the analysis from State) ----------------------------
local brief = "Idea: " .. REQUIREMENTS .. "\nFeatures: " .. clip(recall("features"), 300)
local design = Workflow.builder():name("design"):parallel():max_concurrency(6)
local DESIGN = {
  {"schema", "database_designer", "Tables?"}, {"api", "api_designer", "Endpoints?"},
  {"components", "frontend_lead", "Frontend components?"}, {"modules", "backend_lead", "Backend modules?"},
  {"security", "security_reviewer", "Security measures?"}, {"tests", "test_planner", "Test cases?"},
}
for _, d in ipairs(DESIGN) do
  design:add_step{name = d[1], type = "agent", agent = d[2], input = "{{brief}}\n" .. d[3]}
end
local dr = must(design:build():execute({brief = brief}), "design phase")
for _, d in ipairs(DESIGN) do
  local v = trim(dr.outputs[d[1]])
  remember(d[1], v ~= "" and v or ("(no " .. d[1] .. " produced)"))
end

-- phase 3: code (parallel writers; inputs come from the design in State) -------------------------------
local CODE = {
  {"html", "html_writer", "Write index.html for: " .. REQUIREMENTS .. "\nComponents: " .. clip(recall("components"), 200)},
  {"css", "css_writer", "Write styles.css for a clean " .. PROJECT .. " page."},
  {"js", "js_writer", "Write app.js that calls these endpoints:\n" .. clip(recall("api"), 200)},
  {"models", "model_writer", "Write models.py for these tables:\n" .. clip(recall("schema"), 200)},
  {"routes", "route_writer", "Write routes.py for these endpoints:\n" .. clip(recall("api"), 200)},
  {"pytests", "test_writer", "Write test_app.py covering:\n" .. clip(recall("tests"), 200)},
  {"config", "config_writer", "Write a settings.toml for the " .. PROJECT .. " backend."},
}
local code = Workflow.builder():name("code"):parallel():max_concurrency(7)
for _, c in ipairs(CODE) do code:add_step{name = c[1], type = "agent", agent = c[2], input = c[3]} end
local cr = must(code:build():execute({}), "code phase")
for _, c in ipairs(CODE) do remember("code:" .. c[1], trim(cr.outputs[c[1]])) end

-- phase 4: delivery (sequential) -----------------------------------------------------------------------
local delivery = Workflow.builder():name("delivery"):sequential()
  :add_step{name = "deploy", type = "agent", agent = "devops_engineer",
            input = "Architecture:\n{{architecture}}\nHow to deploy it?"}
  :add_step{name = "readme", type = "agent", agent = "docs_writer", input = "Project {{project}}: {{requirements}}"}
  :add_step{name = "review", type = "agent", agent = "code_reviewer",
            input = "Features:\n{{features}}\nEndpoints:\n{{api}}\nImprovements?"}
  :build()
local del = must(delivery:execute({architecture = clip(recall("architecture"), 300), project = PROJECT,
                                   requirements = REQUIREMENTS, features = clip(recall("features"), 300),
                                   api = clip(recall("api"), 300)}), "delivery phase")
for _, k in ipairs({"deploy", "readme", "review"}) do remember(k, trim(del.outputs[k])) end

-- the project tree (templates + generated content; every file is written even for empty replies) ------
local function doc(title, key) return "# " .. title .. "\n\n" .. (recall(key, "") ~= "" and recall(key) or "(to be written)") .. "\n" end
write("README.md", "# " .. PROJECT .. "\n\n" .. (recall("readme", "") ~= "" and recall("readme") or REQUIREMENTS)
  .. "\n\n## Layout\n\n- frontend/: static HTML, CSS and JavaScript\n- backend/: Python API\n- tests/: pytest suite\n"
  .. "- deploy/: container and proxy configuration\n- docs/: design documents\n")
write("docs/requirements.md", "# Requirements\n\n" .. REQUIREMENTS .. "\n\n## User stories\n\n" .. recall("stories") .. "\n")
write("docs/features.md", doc("Release 1 features", "features"))
write("docs/ux.md", doc("Screens", "screens"))
write("docs/architecture.md", doc("Architecture", "architecture"))
write("docs/database.md", doc("Database", "schema"))
write("docs/api.md", doc("API", "api"))
write("docs/frontend.md", doc("Frontend components", "components"))
write("docs/backend.md", doc("Backend modules", "modules"))
write("docs/security.md", doc("Security", "security"))
write("docs/testing.md", doc("Test plan", "tests"))
write("docs/deployment.md", doc("Deployment", "deploy"))
write("docs/review.md", doc("Review", "review"))

write("frontend/index.html", code_of(recall("code:html"), "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
  .. "<title>" .. PROJECT .. "</title><link rel=\"stylesheet\" href=\"styles.css\"></head>\n<body><main id=\"app\"></main>"
  .. "<script src=\"app.js\"></script></body>\n</html>\n"))
write("frontend/styles.css", code_of(recall("code:css"), "body { font-family: system-ui, sans-serif; margin: 2rem; }\n"))
write("frontend/app.js", code_of(recall("code:js"), "document.getElementById('app').textContent = '" .. PROJECT .. "';\n"))
local components = {}
for line in (recall("components", "") .. "\n"):gmatch("([^\n]*)\n") do
  local name = line:match("(%u%a+)") or ""
  if #name > 2 and #components < 6 then components[#components + 1] = name end
end
for _, fallback in ipairs({"Header", "LoginForm", "TaskList", "TaskForm"}) do
  if #components >= 4 then break end
  components[#components + 1] = fallback
end
local seen = {}
for _, c in ipairs(components) do
  if not seen[c] then
    seen[c] = true
    write("frontend/components/" .. c .. ".js", "// " .. c .. " component for " .. PROJECT .. "\n"
      .. "export function " .. c .. "(props = {}) {\n  const el = document.createElement('section');\n"
      .. "  el.className = '" .. c:lower() .. "';\n  return el;\n}\n")
  end
end
write("frontend/package.json", JSON.stringify({name = PROJECT .. "-frontend", version = "0.1.0", private = true,
                                               scripts = {start = "npx serve ."}}, {indent = 2}))

write("backend/__init__.py", '"""' .. PROJECT .. ' backend."""\n')
write("backend/models.py", code_of(recall("code:models"), "from dataclasses import dataclass\n\n\n@dataclass\nclass Task:\n    id: int\n    title: str\n    done: bool = False\n"))
write("backend/routes.py", code_of(recall("code:routes"), "def list_tasks():\n    return []\n"))
write("backend/app.py", "\"\"\"Entry point of the " .. PROJECT .. " API.\"\"\"\n\nfrom backend import routes\n\n\ndef create_app():\n"
  .. "    return {\"routes\": routes}\n\n\nif __name__ == \"__main__\":\n    print(create_app())\n")
write("backend/security.py", comment_block("# ", recall("security")) .. "\nSECURE_HEADERS = {\"X-Frame-Options\": \"DENY\"}\n")
write("backend/db.py", comment_block("# ", recall("schema")) .. "\nimport sqlite3\n\n\ndef connect(path=\"" .. PROJECT .. ".db\"):\n"
  .. "    return sqlite3.connect(path)\n")
write("backend/settings.toml", code_of(recall("code:config"), "[server]\nport = 8000\n"))
write("backend/requirements.txt", "fastapi>=0.110\nuvicorn>=0.29\npytest>=8\n")
write("tests/__init__.py", "# tests for the " .. PROJECT .. " backend\n")
write("tests/test_app.py", code_of(recall("code:pytests"), "def test_placeholder():\n    assert True\n"))
write("tests/test_plan.md", doc("Test cases", "tests"))
write("deploy/Dockerfile", "FROM python:3.12-slim\nWORKDIR /app\nCOPY backend/requirements.txt .\nRUN pip install -r requirements.txt\n"
  .. "COPY . .\nCMD [\"python\", \"-m\", \"backend.app\"]\n")
write("deploy/docker-compose.yml", "services:\n  api:\n    build: ..\n    ports:\n      - \"8000:8000\"\n")
write("deploy/nginx.conf", "server {\n  listen 80;\n  location / { root /srv/frontend; }\n  location /api/ { proxy_pass http://api:8000; }\n}\n")
write("deploy/DEPLOY.md", doc("Deploy", "deploy"))
write(".gitignore", "__pycache__/\n*.db\nnode_modules/\n.env\n")
write("Makefile", "run:\n\tpython -m backend.app\n\ntest:\n\tpytest tests\n")

-- the manifest of what was generated, from State ---------------------------------------------------
local keys = State.list_keys(SCOPE)
write("project.json", JSON.stringify({name = PROJECT, requirements = REQUIREMENTS, files = written,
                                      state_keys = keys, agents = #ROLES}, {indent = 2}))

local from_model = 0
for _, c in ipairs(CODE) do if recall("code:" .. c[1], "") ~= "" then from_model = from_model + 1 end end
print("== Webapp creator summary ==")
print(string.format("agents in the pipeline: %d over 4 phases", #ROLES))
print(string.format("design decisions kept in state: %d keys", #keys))
print(string.format("files generated: %d (%d code files drafted by the model)", #written, from_model))
print("project written to " .. OUT .. "/" .. PROJECT)
