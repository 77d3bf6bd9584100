"""API tools that speak HTTP: webhook-caller (§19.4), http_request, api-tester, graphql_query, email-sender."""

from __future__ import annotations

import base64
import smtplib
import uuid
from email.message import EmailMessage
from typing import Any

from llmspell.tools.base import Tool, ToolContext, ToolError, ToolOutput, ToolParamError, fail, json_text, ok
from llmspell.tools.http import NetworkFailure, check_url, ensure_network_allowed, number, request


def _headers(tool: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ToolParamError(f"{tool}: parameter 'headers' must be a table of strings")
    return {str(k): str(v) for k, v in value.items()}


def _body(value: Any) -> tuple[bytes | None, Any]:
    """(raw content, json body): tables are sent as JSON, strings as is."""
    if value is None:
        return None, None
    if isinstance(value, dict | list):
        return None, value
    return str(value).encode("utf-8", "surrogateescape"), None


class _HttpTool(Tool):
    is_async = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise ToolError(f"{self.spec.name}: must run on the IO loop")


class WebhookCaller(_HttpTool):
    """webhook-caller: POST a JSON payload; network failures are graceful (§19.4)."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("input"))
        method = str(params.get("method") or "POST").upper()
        retries = int(params.get("max_retries", 3) if params.get("max_retries") is not None else 3)
        timeout = number(params, "timeout", 30.0)
        payload = params.get("payload")
        try:
            r = await request(ctx, method, url, headers=_headers(name, params.get("headers")),
                              json_body=payload if payload is not None else ({} if method != "GET" else None),
                              timeout=timeout, max_retries=retries)
        except NetworkFailure as e:
            return fail("call", e.message, {"success": False, "webhook_url": url, "error": e.message,
                                           "retry_count": e.retries})
        success = 200 <= r.status_code < 300
        response: dict[str, Any] = {"body": r.body, "headers": r.headers, "body_is_json": r.is_json}
        if r.is_json:
            response["json"] = r.json
        result = {"success": success, "webhook_url": url, "status_code": r.status_code, "status_text": r.reason,
                  "response": response, "response_time_ms": r.elapsed_ms, "retry_count": r.retries}
        body: dict[str, Any] = {"operation": "call", "success": success, "result": result}
        if not success:
            body["error"] = f"webhook returned HTTP {r.status_code} {r.reason}"
        return ToolOutput(json_text(body), metadata={"status_code": r.status_code})


def _auth(tool: str, auth: Any, headers: dict[str, str]) -> None:
    if auth is None:
        return
    if not isinstance(auth, dict):
        raise ToolParamError(f"{tool}: parameter 'auth' must be a table {{type = 'bearer'|'basic', ...}}")
    kind = str(auth.get("type", "")).lower()
    if kind == "bearer":
        headers["authorization"] = f"Bearer {auth.get('token', '')}"
    elif kind == "basic":
        raw = f"{auth.get('username', '')}:{auth.get('password', '')}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(raw).decode()
    else:
        raise ToolParamError(f"{tool}: invalid auth type '{kind}' (allowed: bearer, basic)")


class HttpRequest(_HttpTool):
    """http_request: any method; an HTTP error status is reported in status_code, not a failure."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("input"))
        method = str(params.get("method") or "GET").upper()
        headers = _headers(name, params.get("headers"))
        _auth(name, params.get("auth"), headers)
        content, js = _body(params.get("body"))
        retry = params.get("retry") or {}
        attempts = int(retry.get("max_attempts", 1)) if isinstance(retry, dict) else 1
        try:
            r = await request(ctx, method, url, headers=headers, content=content, json_body=js,
                              timeout=number(params, "timeout", float(ctx.opt("timeout", 30))),
                              max_retries=max(attempts - 1, 0))
        except NetworkFailure as e:
            return fail("request", e.message, {"url": url})
        result: dict[str, Any] = {"status_code": r.status_code, "headers": r.headers, "body": r.body,
                                  "elapsed_ms": r.elapsed_ms, "url": url}
        if r.is_json:
            result["json"] = r.json
        return ok("request", result, status_code=r.status_code)


class ApiTester(_HttpTool):
    """api-tester: one request plus a pass/fail check on the status."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("input"))
        content, js = _body(params.get("body"))
        try:
            r = await request(ctx, str(params.get("method") or "GET").upper(), url,
                              headers=_headers(name, params.get("headers")), content=content, json_body=js,
                              timeout=number(params, "timeout", 30.0), max_retries=0)
        except NetworkFailure as e:
            return fail("test", e.message, {"url": url, "passed": False})
        expect = params.get("expect_status")
        passed = r.status_code == int(expect) if expect is not None else 200 <= r.status_code < 400
        result: dict[str, Any] = {"status_code": r.status_code, "response_time_ms": r.elapsed_ms,
                                  "headers": r.headers, "body": r.body, "passed": passed}
        if r.is_json:
            result["json"] = r.json
        return ok("test", result)


_INTROSPECTION = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } " \
                 "types { name kind description fields { name } } } }"


class GraphqlQuery(_HttpTool):
    """graphql_query: POST {query, variables, operationName} to an endpoint."""

    async def arun(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        name = self.spec.name
        ensure_network_allowed(name, ctx)
        url = check_url(name, params.get("endpoint"))
        op = str(params.get("operation") or "query").lower()
        query = _INTROSPECTION if op == "introspection" else params.get("input")
        if not isinstance(query, str) or not query.strip():
            raise ToolParamError(f"{name}: missing required parameter 'input' (the GraphQL {op})")
        payload: dict[str, Any] = {"query": query}
        if params.get("variables") is not None:
            payload["variables"] = params["variables"]
        if params.get("operation_name"):
            payload["operationName"] = params["operation_name"]
        try:
            r = await request(ctx, "POST", url, headers=_headers(name, params.get("headers")), json_body=payload,
                              timeout=30.0, max_retries=int(ctx.opt("max_retries", 1)))
        except NetworkFailure as e:
            return fail(op, e.message, {"endpoint": url})
        js = r.json if isinstance(r.json, dict) else {}
        result: dict[str, Any] = {"data": js.get("data"), "status_code": r.status_code}
        if js.get("errors"):
            result["errors"] = js["errors"]
        if not r.is_json:
            return fail(op, f"endpoint returned HTTP {r.status_code} without JSON", result)
        return ok(op, result)


class EmailSender(Tool):
    """email-sender: SMTP from [tools.email_sender]; unconfigured raises as the spec says."""

    blocking = True

    def run(self, params: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        provider = str(params.get("provider") or ctx.opt("provider", "smtp")).lower()
        host = ctx.opt("smtp_host") or ctx.opt("host")
        if provider != "smtp" or not host:
            raise ToolError("email-sender is not configured ([tools.email_sender])")
        msg = EmailMessage()
        msg["To"] = str(params["to"])
        msg["From"] = str(params.get("from") or ctx.opt("from", "llmspell@localhost"))
        msg["Subject"] = str(params["subject"])
        msg_id = f"<{uuid.uuid4()}@llmspell>"
        msg["Message-ID"] = msg_id
        if params.get("html"):
            msg.set_content(str(params["body"]), subtype="html")
        else:
            msg.set_content(str(params["body"]))
        try:
            with smtplib.SMTP(str(host), int(ctx.opt("smtp_port", ctx.opt("port", 25))), timeout=30) as s:
                if ctx.opt("use_tls"):
                    s.starttls()
                if ctx.opt("username"):
                    s.login(str(ctx.opt("username")), str(ctx.opt("password", "")))
                s.send_message(msg)
        except (OSError, smtplib.SMTPException) as e:
            return fail("send", f"SMTP send failed: {e}", {"provider": "smtp"})
        return ok("send", {"message_id": msg_id, "provider": "smtp"})


async def fetch_text(ctx: ToolContext, url: str, timeout: float) -> tuple[int, str, dict[str, str]]:
    """GET a page (for the web tools); raises NetworkFailure."""
    r = await request(ctx, "GET", url, timeout=timeout, max_retries=int(ctx.opt("max_retries", 1)))
    return r.status_code, r.body, r.headers

