"""Short documentation of the llmspell globals and common Lua functions, for inspect and the pager.

Derived by hand from the section headings and function tables of the Lua API specification
(lua-api.md §2-§18) and the Lua 5.4 manual. Keys are dotted names as written in scripts.
"""

from __future__ import annotations

GLOBALS: dict[str, str] = {
    "Agent": "Agent: named LLM-backed objects (lua-api §2). Agent.builder():name(n):model('openai/gpt-4o-mini')"
             ":system_prompt(s):build() -> Agent; agent:execute{text=...} -> {text, metadata}.",
    "Provider": "Provider: the LLM providers known to the runtime (lua-api §3): list, get, getCapabilities, "
                "isAvailable.",
    "Tool": "Tool: built-in tools (lua-api §4): Tool.invoke(name, params) -> result table; list, get, exists, "
            "categories, discover; Tool.<name> is the tool's table.",
    "Workflow": "Workflow: sequential, parallel, conditional and loop workflows of agent, tool and function "
                "steps (lua-api §5). Workflow.builder():name(n):sequential():add_step{...}:build():execute(input).",
    "State": "State: scoped persistent key/value store, SQLite by default (lua-api §6): save, load, delete, "
             "exists, list_keys, clear.",
    "RAG": "RAG: retrieval over a local vector store, present only when RAG is enabled (lua-api §7): ingest, "
           "search, get_stats, configure, save.",
    "Session": "Session: groups a run's activity and artifacts, identified by id strings (lua-api §8): create, "
               "get, list, get_current, set_current, complete, save, load.",
    "Artifact": "Artifact: content-addressed files stored in a session (lua-api §9): store, store_file, get, "
                "list, delete, query.",
    "Event": "Event: publish/subscribe event bus with glob patterns (lua-api §10): publish, subscribe, receive, "
             "unsubscribe, list_subscriptions, get_stats.",
    "Hook": "Hook: callbacks at lifecycle points such as BeforeAgentExecution or PreExecute (lua-api §11): "
            "register(point, fn, priority?) -> HookHandle, unregister, list.",
    "JSON": "JSON: parse and stringify with the runtime's Lua <-> JSON rules (lua-api §12): parse, stringify, "
            "array, null (aliases decode, encode).",
    "Config": "Config: read-only view of the effective configuration (lua-api §13): get(path?), getSection, "
              "getProvider, listProviders, path.",
    "Logger": "Logger: structured logging to the log output (lua-api §14): trace, debug, info, warn, error, "
              "log, setLevel, child.",
    "Utils": "Utils: helpers (lua-api §15): uuid, now, sleep, split, trim, keys, merge, hash, base64_encode, "
             "render.",
    "Debug": "Debug: script diagnostics written to stderr (lua-api §16): info, warn, error, timer, dump, "
             "stackTrace, memoryStats, performanceReport.",
    "Streaming": "Streaming: coroutine-backed streams (lua-api §17): Streaming.create(fn) -> stream with "
                 ":next(), :isDone(), :collect(); Streaming.yield(v).",
    "Replay": "Replay: compare and replay recorded session timelines (lua-api §18): create_config, "
              "create_comparator, modes, schedules.",
    "Metrics": "Metrics: figures a script reports about its own run (lua-api §23): count(name, n?), set(name, value), "
               "get(name), all(); reset per run, reported in execute_reply metadata llmspell.metrics.",
    "ARGS": "ARGS: script arguments (lua-api §1.9). In the kernel ARGS[0] is 'cell[<n>]'; a client may pass "
            "arguments in execute_request metadata {\"llmspell\": {\"args\": [...]}}.",
    "arg": "arg: raw script arguments in the standard Lua layout: arg[0] is the script, arg[1..n] the tokens.",
}

FUNCTIONS: dict[str, str] = {
    "Agent.builder": "Agent.builder() -> AgentBuilder. Chain :name, :model, :provider, :system_prompt, "
                     ":temperature, :max_tokens, :tools and finish with :build().",
    "Agent.create": "Agent.create(cfg) -> Agent, with builder keys as fields.",
    "Agent.get": "Agent.get(name) -> Agent or nil.",
    "Agent.list": "Agent.list() -> array of {name, model, provider, description}.",
    "Agent.discover": "Agent.discover() -> agent types {{type='llm', description}}.",
    "Agent.register": "Agent.register(cfg) -> name.",
    "Agent.wrap_as_tool": "Agent.wrap_as_tool(name, cfg?) -> tool name; the tool takes {input=string}.",
    "Provider.list": "Provider.list() -> array of provider tables (keys are never included).",
    "Provider.get": "Provider.get(name) -> provider table or nil.",
    "Provider.getCapabilities": "Provider.getCapabilities(name) -> capabilities table or nil.",
    "Provider.isAvailable": "Provider.isAvailable(name) -> bool; no network call.",
    "Tool.invoke": "Tool.invoke(name, params) -> result table; raises on misuse or failure (alias Tool.execute).",
    "Tool.execute": "Tool.execute(name, params): alias of Tool.invoke.",
    "Tool.list": "Tool.list() -> array of {name, description, category, version}, sorted by name.",
    "Tool.get": "Tool.get(name) -> tool table with schema, or nil.",
    "Tool.exists": "Tool.exists(name) -> bool.",
    "Tool.categories": "Tool.categories() -> array of category names.",
    "Tool.discover": "Tool.discover(filter?) -> array of tools; filter = {category?, tag?}.",
    "Workflow.builder": "Workflow.builder() -> WorkflowBuilder: :name, :description, :sequential/:parallel/"
                        ":conditional/:loop, :add_step{...}, :build().",
    "Workflow.sequential": "Workflow.sequential(cfg) -> Workflow.",
    "Workflow.parallel": "Workflow.parallel(cfg) -> Workflow.",
    "Workflow.conditional": "Workflow.conditional(cfg) -> Workflow.",
    "Workflow.loop": "Workflow.loop(cfg) -> Workflow.",
    "Workflow.get": "Workflow.get(id_or_name) -> Workflow or nil.",
    "Workflow.list": "Workflow.list() -> array of {id, name, type, description}.",
    "Workflow.types": "Workflow.types() -> {'sequential', 'parallel', 'conditional', 'loop'}.",
    "State.save": "State.save(scope, key, value): store a JSON-convertible value (nil deletes).",
    "State.load": "State.load(scope, key, default?) -> value, default or nil.",
    "State.delete": "State.delete(scope, key) -> bool.",
    "State.exists": "State.exists(scope, key) -> bool.",
    "State.list_keys": "State.list_keys(scope) -> sorted array of keys.",
    "State.clear": "State.clear(scope) -> number deleted.",
    "State.get": "State.get(key): State.load('global', key).",
    "State.set": "State.set(key, value): State.save('global', key, value).",
    "RAG.ingest": "RAG.ingest(docs, opts?) -> {success, documents_processed, vectors_created, ...}.",
    "RAG.search": "RAG.search(query, opts?) -> array-like result table.",
    "Session.create": "Session.create(opts?) -> session id.",
    "Session.get": "Session.get(id) -> session table or nil.",
    "Session.list": "Session.list(query?) -> array of session tables, newest first.",
    "Artifact.store": "Artifact.store(session_id, type, name, content, metadata?) -> id table.",
    "Artifact.get": "Artifact.get(session_id, id) -> {content, metadata} or nil.",
    "Event.publish": "Event.publish(event_type, data?, opts?) -> true (false when events are disabled).",
    "Event.subscribe": "Event.subscribe(pattern, opts?) -> subscription id.",
    "Event.receive": "Event.receive(sub_id, timeout_ms?) -> event table or nil on timeout.",
    "Hook.register": "Hook.register(point, fn, priority?) -> HookHandle; fn(ctx) may return "
                     "'continue', 'skip', {type='modified', data=...} and more (lua-api §11.3).",
    "Hook.unregister": "Hook.unregister(handle) -> bool.",
    "Hook.list": "Hook.list(filter?) -> array of hook descriptions.",
    "JSON.parse": "JSON.parse(s) -> Lua value; invalid JSON raises with line and column.",
    "JSON.stringify": "JSON.stringify(v, opts?) -> compact JSON with sorted keys; opts = {indent = n}.",
    "JSON.array": "JSON.array(t?) -> t marked to encode as a JSON array.",
    "Config.get": "Config.get(path?) -> value at a dotted path, the whole table, or nil.",
    "Logger.info": "Logger.info(msg, fields?): log at info level.",
    "Utils.uuid": "Utils.uuid() -> UUID v4 string.",
    "Utils.sleep": "Utils.sleep(ms): interruptible sleep.",
    "Utils.now": "Utils.now() -> epoch seconds (float).",
    "Debug.dump": "Debug.dump(v, label?) -> readable Lua-literal rendering.",
    "Debug.timer": "Debug.timer(name) -> timer with :stop(), :lap(name), :elapsed().",
    "Streaming.create": "Streaming.create(fn) -> stream; :next(), :isDone(), :collect().",
    # Lua standard library (Lua 5.4 manual).
    "print": "print(...): writes its arguments, rendered and separated by tabs, then a newline, to stdout.",
    "io.write": "io.write(...): writes strings and numbers to stdout with no separator; returns io.stdout.",
    "io.read": "io.read(fmt?): reads a line; in the kernel it asks the frontend (input_request).",
    "pairs": "pairs(t): iterator over all key/value pairs of t (honours __pairs).",
    "ipairs": "ipairs(t): iterator over t[1], t[2], ... up to the first nil.",
    "type": "type(v) -> 'nil', 'number', 'string', 'boolean', 'table', 'function', 'thread' or 'userdata'.",
    "tostring": "tostring(v) -> string (honours __tostring and __name).",
    "tonumber": "tonumber(v, base?) -> number or nil.",
    "pcall": "pcall(f, ...) -> true, results... or false, error.",
    "xpcall": "xpcall(f, handler, ...) -> like pcall, calling handler(err) on error.",
    "error": "error(message, level?): raises an error.",
    "assert": "assert(v, message?): raises message when v is false or nil; returns its arguments.",
    "require": "require(name): loads a module through package.path.",
    "select": "select(n, ...) -> arguments from n on; select('#', ...) -> their count.",
    "setmetatable": "setmetatable(t, mt) -> t.",
    "getmetatable": "getmetatable(v) -> metatable or its __metatable field.",
    "next": "next(t, k?) -> next key/value pair of t.",
    "rawget": "rawget(t, k) -> t[k] without metamethods.",
    "rawset": "rawset(t, k, v) -> t, without metamethods.",
    "load": "load(chunk, name?, mode?, env?) -> function or nil, error.",
    "string.format": "string.format(fmt, ...) -> formatted string (printf-style).",
    "string.sub": "string.sub(s, i, j?) -> substring.",
    "string.find": "string.find(s, pattern, init?, plain?) -> start, end, captures...",
    "string.gsub": "string.gsub(s, pattern, repl, n?) -> string, count.",
    "string.match": "string.match(s, pattern, init?) -> captures.",
    "string.gmatch": "string.gmatch(s, pattern) -> iterator over matches.",
    "string.rep": "string.rep(s, n, sep?) -> s repeated n times.",
    "string.upper": "string.upper(s) -> upper-case copy.",
    "string.lower": "string.lower(s) -> lower-case copy.",
    "string.len": "string.len(s) -> length in bytes.",
    "table.insert": "table.insert(t, [pos,] v): inserts v at pos (default: the end).",
    "table.remove": "table.remove(t, pos?) -> removed element.",
    "table.concat": "table.concat(t, sep?, i?, j?) -> string.",
    "table.sort": "table.sort(t, comp?): sorts in place.",
    "table.unpack": "table.unpack(t, i?, j?) -> t[i], ..., t[j].",
    "math.floor": "math.floor(x) -> largest integral value <= x.",
    "math.max": "math.max(x, ...) -> maximum.",
    "math.min": "math.min(x, ...) -> minimum.",
    "math.random": "math.random(m?, n?) -> pseudo-random number.",
    "os.time": "os.time(t?) -> epoch seconds.",
    "os.clock": "os.clock() -> CPU seconds used.",
    "os.exit": "os.exit(code?): in the kernel, aborts the cell with the error 'os.exit(<code>) called'.",
    "coroutine.create": "coroutine.create(f) -> thread.",
    "coroutine.resume": "coroutine.resume(co, ...) -> true, values... or false, error.",
    "coroutine.wrap": "coroutine.wrap(f) -> function resuming the coroutine on each call.",
    "coroutine.yield": "coroutine.yield(...): suspends the running coroutine.",
}

KEYWORDS: tuple[str, ...] = (
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
)


def lookup(name: str) -> str | None:
    """The documentation line for a dotted name (colon calls use the dot form), or None."""
    name = name.replace(":", ".")
    return FUNCTIONS.get(name) or GLOBALS.get(name)
