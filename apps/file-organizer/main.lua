-- file-organizer (layer 1): scan a messy folder, classify every file, write an organization plan.
--
-- Three agents: a scanner describes the folder, a classifier labels each file inside a loop
-- workflow, a planner adds a tidying tip. Prompts are few-shot completions (they work on small
-- base models); a reply that is not a category falls back to the file's extension, and the
-- Metrics global reports how many labels the model gave and how many fell back.
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
-- Prompts are few-shot and completion-style (examples in the system prompt, the user text ends
-- where the answer starts), so a small base model continues the pattern instead of echoing it.
local scanner = Agent.builder():name("folder_scanner"):model(MODEL)
  :system_prompt("Files: beach.jpg, cv.pdf, dog.png, party.jpg\nMost files are: images\n\n"
    .. "Files: main.c, util.h, Makefile, notes.txt\nMost files are: code\n\n"
    .. "Files: jan.xlsx, feb.xlsx, song.mp3, march.xlsx\nMost files are: data")
  :temperature(0):max_tokens(6):max_conversation_length(0):build()
Agent.builder():name("file_classifier"):model(MODEL)
  :system_prompt("File: letter.docx -> documents\nFile: cat.gif -> images\nFile: app.js -> code\n"
    .. "File: prices.xlsx -> data\nFile: movie.avi -> media\nFile: old.tar.gz -> archives\n"
    .. "File: thesis.pdf -> documents\nFile: tune.ogg -> media\nFile: LICENSE -> documents\n"
    .. "File: users.json -> data\nFile: logo.svg -> images\nFile: build.sh -> code\nFile: src.7z -> archives\n"
    .. "File: page.htm -> code\nFile: memo.txt -> documents")
  :temperature(0):max_tokens(6):max_conversation_length(0):build()
local planner = Agent.builder():name("organization_planner"):model(MODEL)
  :system_prompt("Category: images\nFolder: Photos\n\nCategory: code\nFolder: Projects\n\nCategory: other\nFolder: Misc")
  :temperature(0):max_tokens(8):max_conversation_length(0):build()

-- Every call stops at the end of its line and uses a fixed seed (the builder has no such
-- settings; a BeforeAgentExecution hook adds them to each call, workflow steps included).
local completion = Hook.register("BeforeAgentExecution", function(ctx)
  local input = ctx.data.input
  input.parameters = input.parameters or {stop = {"\n"}, seed = 7}
  return {type = "modified", data = {input = input}}
end)

-- The first line of a reply, or "" when it only repeats the prompt's scaffold ("File:", "Tip:" ...).
local function answer_line(text)
  local line = trim((tostring(text or ""):match("^%s*([^\n]*)")))
  if line:find("^%a+:") then return "" end
  return line
end

-- The model's category word: the reply's first word when it names (or is a synonym of) a category.
local KNOWN = {}
for _, c in ipairs(CATEGORIES) do KNOWN[c] = c; KNOWN[(c:gsub("s$", ""))] = c end
for word, c in pairs({docs = "documents", text = "documents", notes = "documents", audio = "media", video = "media",
                      music = "media", photos = "images", pictures = "images", archive = "archives"}) do KNOWN[word] = c end
local function label_of(text)
  local word = answer_line(text):lower():match("^(%a+)")
  return word and KNOWN[word] or nil
end

local mostly = label_of(scanner:execute({text = "Files: " .. table.concat(names, ", ") .. "\nMost files are:"}).text)
Metrics.set("overview_by_model", mostly and 1 or 0)
local description = mostly and string.format("A folder of %d unsorted files, mostly %s (model).", #names, mostly)
  or string.format("A folder of %d unsorted files (fallback: the model named no category).", #names)

-- 3. loop workflow: one classification per file ----------------------------------------------------
local wf = Workflow.builder():name("classify_files"):loop():with_collection(names)
  :error_strategy("continue")
  :add_step{name = "classify", type = "agent", agent = "file_classifier", input = "File: {{loop_value}} ->"}
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
local plan, counts, from_model, agree = {}, {}, 0, 0
for i, name in ipairs(names) do
  local it = (result.iterations or {})[i] or {}
  local answer = (it.outputs or {}).classify or ""
  local rule = FALLBACK[(name:match("%.([%w]+)$") or ""):lower()]
  local cat, source = label_of(answer), "model"
  if cat then
    from_model = from_model + 1
    if cat == rule then agree = agree + 1 end
  else
    cat, source = rule or "other", "extension"
  end
  plan[#plan + 1] = {file = name, category = cat, source = source, model_answer = clip(answer, 60), target = cat .. "/" .. name}
  counts[cat] = (counts[cat] or 0) + 1
end
Metrics.set("files_scanned", #names)
Metrics.set("classified_by_model", from_model)
Metrics.set("fallbacks", #names - from_model)
Metrics.set("model_agrees_with_extension", agree)

-- 4. the plan: a folder name per category (the planner), then copies (the messy folder stays) -------
local summary_lines, folder_of, folder_by, named = {}, {}, {}, 0
for _, c in ipairs(CATEGORIES) do
  if counts[c] then
    summary_lines[#summary_lines + 1] = string.format("%s: %d", c, counts[c])
    local name = answer_line(planner:execute({text = "Category: " .. c .. "\nFolder:"}).text):match("^([%w][%w _-]*[%w])$")
    if name and #name <= 40 then
      folder_of[c], folder_by[c], named = name, "model", named + 1
    else
      folder_of[c], folder_by[c] = c, "fallback"
    end
  end
end
Metrics.set("folders_named_by_model", named)
Metrics.set("folder_fallbacks", #summary_lines - named)
completion:unregister() -- hooks outlive a kernel cell otherwise
for _, p in ipairs(plan) do
  p.target = folder_of[p.category] .. "/" .. p.file
  Tool.invoke("file_operations", {operation = "copy", source_path = messy_dir .. "/" .. p.file,
                                  target_path = OUT .. "/organized/" .. p.target})
end

-- 5. the plan files ------------------------------------------------------------------------------------
local md = {"# Organization plan", "", "Folder: " .. label .. " (" .. #names .. " files)", "", "> " .. description, "",
            "| file | category | move to | decided by |", "|---|---|---|---|"}
for _, p in ipairs(plan) do
  md[#md + 1] = string.format("| %s | %s | organized/%s | %s |", p.file, p.category, p.target, p.source)
end
md[#md + 1] = ""
md[#md + 1] = "## Folders"
md[#md + 1] = ""
for _, c in ipairs(CATEGORIES) do
  if counts[c] then
    md[#md + 1] = string.format("- %s -> organized/%s/ (%s)", c, folder_of[c], folder_by[c])
  end
end
write(OUT .. "/plan.md", table.concat(md, "\n") .. "\n")
write(OUT .. "/classification.json", JSON.stringify({folder = label, description = description, files = plan,
                                                     counts = counts, folders = folder_of, by_model = from_model,
                                                     by_extension = #names - from_model}, {indent = 2}))

-- 6. summary ---------------------------------------------------------------------------------------------
print("== File organizer summary ==")
print(string.format("files classified: %d (%d by the model, %d by extension)", #plan, from_model, #plan - from_model))
print(string.format("model labels matching the extension rule: %d of %d", agree, from_model))
print("categories: " .. table.concat(summary_lines, ", "))
print("plan written to " .. OUT .. "/plan.md")
