-- file-organizer (layer 1): scan a messy folder, classify every file, write an organization plan.
--
-- Three agents: a scanner describes the folder, a classifier labels each file inside a loop
-- workflow, a planner writes the plan. Every answer is parsed defensively: when the model says
-- nothing useful, the file's extension decides.
--
--   llmspell apps run file-organizer -- --output-dir ./out/organizer [--folder ~/Downloads]
--   llmspell run apps/file-organizer/main.lua --output-dir ./out/organizer

local OUT = (ARGS["output-dir"] or "llmspell-output/file-organizer"):gsub("/+$", "")
local MODEL = ARGS.model or "openai/gpt-4o-mini"
local CATEGORIES = {"documents", "images", "code", "data", "media", "archives", "other"}

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
  return path
end
local function must(result, what)
  if not result.success then error(what .. " failed: " .. tostring(result.error)) end
  return result
end
-- The first category word the reply mentions, or nil.
local function category_in(text)
  local low = tostring(text or ""):lower()
  local best, best_pos = nil, math.huge
  for _, c in ipairs(CATEGORIES) do
    local singular = c:gsub("s$", "")
    local pos = low:find(singular, 1, true)
    if pos and pos < best_pos then best, best_pos = c, pos end
  end
  return best
end

-- 1. the messy folder (created here, so the app needs no inputs) --------------------------------
local MESSY = {
  {"Invoice_2024-03.pdf", "INVOICE 2024-03\nConsulting, 12 hours ... 1,440.00 EUR\n"},
  {"IMG_4032.jpg", "(jpeg bytes of a beach photo)\n"},
  {"notes from meeting.txt", "Meeting notes: ship v2 on Friday, ask Dana about the budget.\n"},
  {"budget_final_FINAL.xlsx", "category,amount\nrent,1200\nfood,400\n"},
  {"sync.py", "import shutil\n\ndef sync(a, b):\n    shutil.copytree(a, b, dirs_exist_ok=True)\n"},
  {"holiday.mp4", "(video bytes)\n"},
  {"podcast-ep12.mp3", "(audio bytes)\n"},
  {"backup_old.zip", "PK (zip bytes)\n"},
  {"readme", "This folder is a mess. Please tidy it up.\n"},
  {"contacts.csv", "name,email\nDana,dana@example.org\n"},
  {"index.html", "<!doctype html><title>Draft site</title>\n"},
  {"Screenshot 2024-05-01.png", "(png bytes)\n"},
}
local messy_dir, label = OUT .. "/messy", "messy/"
if ARGS.folder then -- organize a real folder instead (read only: files are copied, never moved)
  messy_dir, label = (ARGS.folder:gsub("/+$", "")), ARGS.folder
else
  Tool.invoke("file_operations", {operation = "create_dir", path = messy_dir})
  for _, f in ipairs(MESSY) do write(messy_dir .. "/" .. f[1], f[2]) end
end

local listing = Tool.invoke("file_operations", {operation = "list_dir", path = messy_dir})
local names = {}
for _, e in ipairs((listing.result and listing.result.entries) or {}) do
  if e.type == "file" then names[#names + 1] = e.name end
end
table.sort(names)
print(string.format("Scanned %s: %d files", label, #names))

-- 2. agents --------------------------------------------------------------------------------------
local scanner = Agent.builder():name("folder_scanner"):model(MODEL)
  :system_prompt("You describe folders in one short sentence.")
  :temperature(0.2):max_tokens(64):max_conversation_length(0):build()
local classifier = Agent.builder():name("file_classifier"):model(MODEL)
  :system_prompt("You sort files. Answer with exactly one word: documents, images, code, data, media, archives or other.")
  :temperature(0):max_tokens(8):max_conversation_length(0):build()
local planner = Agent.builder():name("organization_planner"):model(MODEL)
  :system_prompt("You give short, practical advice for tidying folders.")
  :temperature(0.3):max_tokens(128):max_conversation_length(0):build()

local scan = scanner:execute({text = "Describe this folder in one sentence. Files: " .. table.concat(names, ", ")})
local description = clip(scan.text, 240)
if description == "" then description = string.format("A folder with %d unsorted files.", #names) end

-- 3. loop workflow: one classification per file ----------------------------------------------------
local wf = Workflow.builder():name("classify_files"):loop():with_collection(names)
  :error_strategy("continue")
  :add_step{name = "classify", type = "agent", agent = "file_classifier",
            input = "Which category fits the file '{{loop_value}}'? One word."}
  :build()
local result = wf:execute({})
must(result, "classification loop")

local FALLBACK = {
  pdf = "documents", txt = "documents", md = "documents", doc = "documents", docx = "documents",
  jpg = "images", jpeg = "images", png = "images", gif = "images",
  py = "code", js = "code", html = "code", lua = "code",
  csv = "data", xlsx = "data", json = "data",
  mp3 = "media", mp4 = "media", wav = "media",
  zip = "archives", tar = "archives", gz = "archives",
}
local plan, counts, from_model = {}, {}, 0
for i, name in ipairs(names) do
  local it = (result.iterations or {})[i] or {}
  local answer = (it.outputs or {}).classify or ""
  local cat = category_in(answer)
  if cat then from_model = from_model + 1
  else cat = FALLBACK[(name:match("%.([%w]+)$") or ""):lower()] or "other" end
  plan[#plan + 1] = {file = name, category = cat, model_answer = clip(answer, 60), target = cat .. "/" .. name}
  counts[cat] = (counts[cat] or 0) + 1
end

-- 4. copy into the organized tree (the messy folder is left untouched) --------------------------------
for _, p in ipairs(plan) do
  Tool.invoke("file_operations", {operation = "copy", source_path = messy_dir .. "/" .. p.file,
                                  target_path = OUT .. "/organized/" .. p.target})
end

-- 5. the plan ------------------------------------------------------------------------------------------
local summary_lines = {}
for _, c in ipairs(CATEGORIES) do
  if counts[c] then summary_lines[#summary_lines + 1] = string.format("%s: %d", c, counts[c]) end
end
local advice = planner:execute({text = "Files by category: " .. table.concat(summary_lines, ", ")
  .. ". Give three short tips to keep this folder tidy."})
local tips = trim(advice.text)
if tips == "" then tips = "- Keep one folder per category.\n- Name files by date and topic.\n- Archive old files monthly." end

local md = {"# Organization plan", "", "Folder: " .. label .. " (" .. #names .. " files)", "", "> " .. description, "",
            "| file | category | move to |", "|---|---|---|"}
for _, p in ipairs(plan) do md[#md + 1] = string.format("| %s | %s | organized/%s |", p.file, p.category, p.target) end
md[#md + 1] = ""
md[#md + 1] = "## Tips"
md[#md + 1] = ""
md[#md + 1] = tips
write(OUT .. "/plan.md", table.concat(md, "\n") .. "\n")
write(OUT .. "/classification.json", JSON.stringify({folder = label, description = description, files = plan,
                                                     counts = counts}, {indent = 2}))

-- 6. summary ---------------------------------------------------------------------------------------------
print("== File organizer summary ==")
print(string.format("files classified: %d (%d by the model, %d by extension)", #plan, from_model, #plan - from_model))
print("categories: " .. table.concat(summary_lines, ", "))
print("plan written to " .. OUT .. "/plan.md")
