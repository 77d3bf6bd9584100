"""The 37 built-in tools of lua-api.md §19: names, categories, schemas and implementing classes.

Pure data, so building the registry costs nothing; tool classes are imported on first use.
"""

from __future__ import annotations

from typing import Any

from llmspell.tools.base import Param, ToolSpec

CATEGORIES: tuple[str, ...] = ("filesystem", "utility", "data", "document", "api", "web", "system", "media")

ALIASES: dict[str, str] = {"datetime_handler": "date_time_handler"}


def P(name: str, type: str = "string", description: str = "", required: bool = False,  # noqa: A002
      default: Any = None, choices: tuple[str, ...] = (), aliases: tuple[str, ...] = ()) -> Param:
    """Shorthand for a Param."""
    return Param(name, type, description, required, default, choices, aliases)


_OP = "operation"
_FS = "llmspell.tools.fs"
_TEXT = "llmspell.tools.text"
_UTIL = "llmspell.tools.utility"
_DATA = "llmspell.tools.data"
_NET = "llmspell.tools.net"
_WEB = "llmspell.tools.web"
_SYS = "llmspell.tools.system"

SPECS: tuple[ToolSpec, ...] = (
    # ---------------------------------------------------------------- filesystem
    ToolSpec("file_operations", "filesystem", "Read, write, append, list, copy, move and delete files in the sandbox", (
        P(_OP, required=True, description="read/write/append/delete/create_dir/list_dir/copy/move/metadata/exists"),
        P("path", description="the file or directory path"),
        P("input", "any", "content for write and append", aliases=("content",)),
        P("source_path", description="source for copy and move"),
        P("target_path", description="target for copy and move"),
        P("recursive", "boolean", "recurse into directories"),
        P("encoding", description="text encoding", default="utf-8"),
    ), f"{_FS}:FileOperations", filesystem=True),
    ToolSpec("archive_handler", "filesystem", "Create, list and extract zip and tar archives", (
        P(_OP, required=True, choices=("extract", "create", "list")),
        P("path", required=True, description="the archive path"),
        P("target_path", description="extraction directory"),
        P("input", "array", "files to put in a new archive"),
        P("format", description="zip, tar or tar.gz", choices=("zip", "tar", "tar.gz")),
    ), f"{_FS}:ArchiveHandler", filesystem=True),
    ToolSpec("file_converter", "filesystem", "Convert file encodings, line endings and indentation", (
        P(_OP, required=True, choices=("encoding", "line_endings", "indentation")),
        P("path", required=True), P("target_path"), P("from_encoding"), P("to_encoding"),
        P("line_ending", choices=("lf", "crlf")), P("convert_to_spaces", "boolean"), P("tab_size", "integer"),
    ), f"{_FS}:FileConverter", filesystem=True),
    ToolSpec("file_search", "filesystem", "Search file contents for a text or regex pattern", (
        P("pattern", required=True), P("path", required=True), P("recursive", "boolean", default=True),
        P("case_sensitive", "boolean"), P("use_regex", "boolean"), P("context_lines", "integer"),
        P("include_extensions", "array"), P("exclude_extensions", "array"), P("exclude_dirs", "array"),
        P("max_file_size", "integer"), P("max_matches_per_file", "integer"), P("max_depth", "integer"),
    ), f"{_FS}:FileSearch", filesystem=True),
    ToolSpec("file_watcher", "filesystem", "Watch paths for changes until max_events or a timeout", (
        P(_OP, required=True, choices=("watch", "config")), P("input", "array"), P("recursive", "boolean"),
        P("pattern"), P("debounce_ms", "integer"), P("timeout_ms", "integer"), P("max_events", "integer"),
    ), f"{_FS}:FileWatcher", filesystem=True),
    # ---------------------------------------------------------------- utility
    ToolSpec("text_manipulator", "utility", "Transform text: case, replace, split, join, wrap, sanitize", (
        P("input", "any", "the text", required=True),
        P(_OP, required=True, description="uppercase/lowercase/reverse/trim/replace/substring/split/join/"
          "snake_case/camel_case/pascal_case/sanitize/truncate/indent/dedent/normalize_whitespace/word_wrap"),
        P("options", "object", "operation options"),
    ), f"{_TEXT}:TextManipulator"),
    ToolSpec("base64_encoder", "utility", "Base64 encode and decode text or files", (
        P(_OP, required=True, choices=("encode", "decode")), P("input"), P("input_file"), P("output_file"),
        P("variant", choices=("standard", "url_safe"), default="standard"), P("binary_input", "boolean"),
    ), f"{_UTIL}:Base64Encoder"),
    ToolSpec("calculator", "utility", "Evaluate arithmetic expressions safely (no eval)", (
        P(_OP, default="evaluate", choices=("evaluate", "validate", "functions")),
        P("input", description="the expression", aliases=("expression",)), P("variables", "object"),
    ), f"{_UTIL}:Calculator"),
    ToolSpec("date_time_handler", "utility", "Parse, format, convert and compute dates and times", (
        P(_OP, required=True, choices=("parse", "now", "convert_timezone", "add", "subtract", "difference",
                                      "info", "formats")),
        P("input"), P("timezone"), P("target_timezone"), P("amount", "number"), P("unit"), P("start"),
        P("end"), P("format"),
    ), f"{_UTIL}:DateTimeHandler"),
    ToolSpec("diff_calculator", "utility", "Compute text or JSON differences", (
        P("type", choices=("text", "json"), default="text"), P("old_text"), P("new_text"),
        P("old_json", "any"), P("new_json", "any"), P("old_file"), P("new_file"),
        P("format", choices=("unified", "context", "inline", "simple"), default="unified"),
    ), f"{_UTIL}:DiffCalculator"),
    ToolSpec("hash_calculator", "utility", "Hash strings or files and verify hashes", (
        P(_OP, required=True, choices=("hash", "verify")),
        P("algorithm", choices=("md5", "sha1", "sha256", "sha512"), default="sha256"),
        P("input_type", choices=("string", "file"), default="string"), P("input"), P("file"),
        P("format", choices=("hex", "base64"), default="hex"), P("expected_hash"),
    ), f"{_UTIL}:HashCalculator"),
    ToolSpec("template_engine", "utility", "Render Jinja-style (tera) or handlebars templates, sandboxed", (
        P("input", required=True, description="the template"), P("context", "object"),
        P("engine", choices=("tera", "handlebars", "hbs", "jinja", "jinja2"), default="tera"),
        P("auto_detect", "boolean"),
    ), f"{_UTIL}:TemplateEngine"),
    ToolSpec("uuid_generator", "utility", "Generate and validate UUIDs", (
        P(_OP, default="generate", choices=("generate", "component_id", "deterministic", "custom", "validate")),
        P("version", "any", "1, 4, 5 or 7 (integer, string or 'v4')", default=4),
        P("format", choices=("hyphenated", "simple", "urn"), default="hyphenated"),
        P("namespace"), P("name"), P("prefix"), P("suffix"), P("short", "boolean"), P("uuid"),
    ), f"{_UTIL}:UuidGenerator"),
    # ---------------------------------------------------------------- data
    ToolSpec("data_validation", "data", "Validate data against a list of rules", (
        P("input", "any", required=True), P("rules", "object", required=True),
    ), f"{_DATA}:DataValidation"),
    ToolSpec("csv_analyzer", "data", "Analyze, convert, filter, transform, validate and sample CSV", (
        P(_OP, default="analyze", choices=("analyze", "convert", "filter", "transform", "validate", "sample")),
        P("input", required=True, description="CSV text"), P("options", "object"),
    ), f"{_DATA}:CsvAnalyzer"),
    ToolSpec("json_processor", "data", "Query JSON with jq syntax and validate it against a JSON Schema", (
        P(_OP, default="query", choices=("query", "transform", "jq", "validate", "stream")),
        P("input", "any"), P("query"), P("schema", "object"),
    ), f"{_DATA}:JsonProcessor"),
    ToolSpec("graph-builder", "data", "Build and analyze graphs", (
        P(_OP, required=True, choices=("create_graph", "add_node", "add_edge", "analyze", "export_json",
                                      "import_json")),
        P("input", "any"), P("graph_type", choices=("directed", "undirected")), P("graph", "any"), P("node_id"),
        P("from"), P("to"), P("data", "any"),
    ), f"{_DATA}:GraphBuilder"),
    # ---------------------------------------------------------------- document
    ToolSpec("citation-formatter", "document", "Format citations and validate bibliographies", (
        P(_OP, choices=("format_citation", "validate_bibliography", "list_styles")), P("input"), P("style"),
        P("cite_keys", "array"),
    ), "llmspell.tools.document:CitationFormatter"),
    ToolSpec("pdf-processor", "document", "Extract text, metadata and pages from PDF files", (
        P(_OP, choices=("extract_text", "extract_metadata", "extract_pages")), P("input", required=True),
        P("start_page", "integer"), P("end_page", "integer"),
    ), "llmspell.tools.document:PdfProcessor", filesystem=True),
    # ---------------------------------------------------------------- api
    ToolSpec("webhook-caller", "api", "Call a webhook URL with a JSON payload", (
        P("input", required=True, description="the webhook URL", aliases=("url",)),
        P("method", default="POST"), P("payload", "any", "JSON body"), P("headers", "object"),
        P("max_retries", "integer", default=3), P("timeout", "number", "seconds", default=30),
    ), f"{_NET}:WebhookCaller", network=True),
    ToolSpec("graphql_query", "api", "Send GraphQL queries, mutations and introspection", (
        P(_OP, choices=("query", "mutation", "introspection"), default="query"),
        P("endpoint", required=True), P("input", description="the query"), P("variables", "object"),
        P("operation_name"), P("headers", "object"),
    ), f"{_NET}:GraphqlQuery", network=True),
    ToolSpec("http_request", "api", "Send an HTTP request", (
        P("input", required=True, description="the URL", aliases=("url",)), P("method", default="GET"),
        P("headers", "object"), P("body", "any"), P("auth", "object"), P("retry", "object"),
        P("timeout", "number"),
    ), f"{_NET}:HttpRequest", network=True),
    ToolSpec("api-tester", "api", "Test an HTTP endpoint and check its status", (
        P("input", required=True, aliases=("url",)), P("method", default="GET"), P("headers", "object"),
        P("body", "any"), P("timeout", "number"), P("expect_status", "integer"),
    ), f"{_NET}:ApiTester", network=True),
    ToolSpec("email-sender", "api", "Send email through SMTP, SendGrid or SES", (
        P("to", required=True), P("subject", required=True), P("body", required=True), P("from"),
        P("html", "boolean"), P("provider", choices=("smtp", "sendgrid", "ses")),
    ), f"{_NET}:EmailSender"),
    ToolSpec("database-connector", "api", "Query SQLite databases", (
        P(_OP, required=True, choices=("query", "schema")), P("database"), P("query"),
        P("query_type", choices=("read", "write"), default="read"),
    ), f"{_DATA}:DatabaseConnector", filesystem=True),
    # ---------------------------------------------------------------- web
    ToolSpec("web_search", "web", "Search the web", (
        P("input", required=True, description="the query"),
        P("provider", choices=("duckduckgo", "google", "brave", "serpapi", "serperdev"), default="duckduckgo"),
        P("max_results", "integer", default=10), P("search_type", choices=("web", "news", "images")),
        P("safe_search", "any"), P("language"),
    ), f"{_WEB}:WebSearch", network=True),
    ToolSpec("url-analyzer", "web", "Parse a URL and optionally fetch its page metadata", (
        P("input", required=True, aliases=("url",)), P("fetch_metadata", "boolean"), P("decode_params", "boolean"),
    ), f"{_WEB}:UrlAnalyzer", network=True),
    ToolSpec("web-scraper", "web", "Fetch a page and extract text, selections, links and images", (
        P("input", required=True, aliases=("url",)), P("selectors", "object"), P("selector"),
        P("extract_links", "boolean"), P("extract_images", "boolean"), P("extract_meta", "boolean"),
        P("timeout", "number"), P("wait_for_js", "boolean"),
    ), f"{_WEB}:WebScraper", network=True),
    ToolSpec("webpage-monitor", "web", "Detect changes in a web page", (
        P("input", required=True, aliases=("url",)), P("previous_content"), P("selector"),
        P("ignore_whitespace", "boolean"),
    ), f"{_WEB}:WebpageMonitor", network=True),
    ToolSpec("sitemap-crawler", "web", "Collect URLs from a sitemap", (
        P("input", required=True, aliases=("url",)), P("follow_sitemaps", "boolean"),
        P("max_urls", "integer", default=100), P("timeout", "number"),
    ), f"{_WEB}:SitemapCrawler", network=True),
    # ---------------------------------------------------------------- system
    ToolSpec("environment_reader", "system", "Read environment variables (secrets masked)", (
        P(_OP, required=True, choices=("get", "list", "pattern", "set")), P("variable_name"), P("value"),
        P("pattern"),
    ), f"{_SYS}:EnvironmentReader"),
    ToolSpec("process_executor", "system", "Run a program (needs allow_process_spawn)", (
        P("executable", required=True), P("arguments", "array"), P("working_directory"),
        P("environment", "object"), P("timeout_seconds", "number", default=30),
    ), f"{_SYS}:ProcessExecutor"),
    ToolSpec("service_checker", "system", "Check whether a TCP, HTTP or DNS service is reachable", (
        P("target", required=True), P("check_type", required=True, choices=("tcp", "http", "https", "dns")),
        P("timeout_seconds", "number"),
    ), f"{_SYS}:ServiceChecker", network=True),
    ToolSpec("system_monitor", "system", "Report CPU, memory and disk usage", (
        P(_OP, choices=("all", "stats", "cpu", "memory", "disk"), default="all"),
    ), f"{_SYS}:SystemMonitor"),
    # ---------------------------------------------------------------- media
    ToolSpec("audio_processor", "media", "Inspect and convert audio files", (
        P(_OP, choices=("detect", "metadata", "convert")), P("file_path"), P("source_path"), P("target_path"),
        P("target_format"),
    ), "llmspell.tools.media:AudioProcessor", filesystem=True),
    ToolSpec("image_processor", "media", "Inspect and transform images", (
        P(_OP, choices=("detect", "metadata", "resize", "convert", "crop", "rotate", "thumbnail")),
        P("file_path"), P("source_path"), P("target_path"), P("width", "integer"), P("height", "integer"),
        P("x", "integer"), P("y", "integer"), P("degrees", "number"), P("maintain_aspect_ratio", "boolean"),
        P("target_format"), P("max_width", "integer"), P("max_height", "integer"),
    ), "llmspell.tools.media:ImageProcessor", filesystem=True),
    ToolSpec("video_processor", "media", "Inspect video files and extract frames", (
        P(_OP, choices=("detect", "metadata", "thumbnail", "extract_frame")), P("file_path"), P("target_path"),
        P("timestamp_seconds", "number"),
    ), "llmspell.tools.media:VideoProcessor", filesystem=True),
)

SPECS_BY_NAME: dict[str, ToolSpec] = {s.name: s for s in SPECS}
