"""Serve the template's REST API on 127.0.0.1, as `sam local start-api` does with Docker.

HTTP requests become API Gateway proxy events for the function the template routes them to,
after the template's TOKEN authorizer allowed them and within the template's throttling: the
stage's default limits and, per usage key the authorizer names, the usage plan's rate and burst
(token buckets, as API Gateway meters them). The gateway's own refusals use the template's
GatewayResponses (problem+json), so local and deployed answers match.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local import swagger
from local.http_server import LocalHTTPServer
from local.lambdas import LocalLambdas
from local.template import ACCOUNT, REGION, Template

# API Gateway's own status and message for each response type the local gateway gives.
DEFAULT_RESPONSES = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "AUTHORIZER_FAILURE": (500, "Internal server error"),
}


class TokenBucket:
    """API Gateway's throttle: `burst` requests at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Route:
    def __init__(self, method: str, path: str, function: str) -> None:
        self.method = method
        self.path = path
        self.function = function
        pattern = re.sub(r"\{(\w+)\+?\}", r"(?P<\1>[^/]+)", path)
        self.regex = re.compile(f"^{pattern}$")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        return found.groupdict() if found else None


class LocalApi:
    def __init__(self, template: Template, lambdas: LocalLambdas, api_id: str = "ShopApi"):
        self.lambdas = lambdas
        self.api = template.api(api_id)
        self.stage = self.api.get("StageName", "prod")
        routes = [r for r in template.api_routes() if r["api"] == api_id]
        # API Gateway prefers a literal path segment to a {parameter} at the same place.
        routes.sort(key=lambda r: ["{" in part for part in r["path"].split("/")])
        self.routes = [Route(r["method"], r["path"], r["function"]) for r in routes]
        functions = template.functions()
        self.function_names = {k: f.name for k, f in functions.items()}
        auth = self.api.get("Auth", {})
        default = auth.get("DefaultAuthorizer")
        self.authorizer = auth.get("Authorizers", {}).get(default) if default else None
        self.api_key_required = bool(auth.get("ApiKeyRequired"))
        self.stage_bucket = _stage_bucket(self.api)
        self.plans = template.usage_plans(api_id)
        self.buckets: dict[str, TokenBucket] = {}  # per usage key, as a usage plan meters
        self._buckets_lock = threading.Lock()
        self._policies: dict[str, tuple[float, Any]] = {}  # the authorizer's cache, by token
        self.server: LocalHTTPServer | None = None

    # --- gateway behaviour ---------------------------------------------------------------

    def gateway_response(
        self, kind: str, request_id: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        """The template's GatewayResponse for `kind`, else its DEFAULT_4XX/5XX, as AWS picks."""
        status, message = DEFAULT_RESPONSES.get(kind, (500, "Internal server error"))
        responses = self.api.get("GatewayResponses", {})
        spec = responses.get(kind) or responses.get(
            "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        )
        if not spec:
            body = json.dumps({"message": message}).encode()
            return status, {"Content-Type": "application/json"}, body
        headers = {
            name: value.strip("'")
            for name, value in spec.get("ResponseParameters", {}).get("Headers", {}).items()
        }
        text = spec.get("ResponseTemplates", {}).get("application/json", "")
        context = {  # the $context variables the templates use
            "$context.error.responseType": kind,
            "$context.error.messageString": json.dumps(message),
            "$context.error.message": message,
            "$context.requestId": request_id,
        }
        for name in sorted(context, key=len, reverse=True):
            text = text.replace(name, context[name])
        return int(spec.get("StatusCode", status)), headers, text.encode()

    def throttle(self, usage_key: str | None) -> bool:
        """Whether the stage's limits and the usage key's plan let one more request through."""
        if usage_key is not None and self.plans:
            with self._buckets_lock:
                bucket = self.buckets.get(usage_key)
                if bucket is None:
                    rate, burst = self.plans[0]
                    bucket = self.buckets[usage_key] = TokenBucket(rate, burst)
            if not bucket.take():
                return False
        return self.stage_bucket is None or self.stage_bucket.take()

    def authorize(
        self, headers: dict[str, str], method: str, path: str
    ) -> tuple[dict[str, Any], str | None] | str:
        """As API Gateway: a token's policy is cached for the authorizer's ReauthorizeEvery
        seconds (300 by default; 0 turns the cache off)."""
        identity = (self.authorizer or {}).get("Identity", {})
        ttl = float(identity.get("ReauthorizeEvery", 300))
        token = _header(headers, identity.get("Header", "Authorization"))
        cached = self._policies.get(token)
        if ttl and cached and cached[0] > time.monotonic():
            return cached[1] if isinstance(cached[1], str) else (dict(cached[1][0]), cached[1][1])
        answer = self._run_authorizer(headers, method, path)
        if ttl and token and (isinstance(answer, tuple) or answer == "ACCESS_DENIED"):
            self._policies[token] = (time.monotonic() + ttl, answer)  # a policy, not an error
        return answer

    def _run_authorizer(
        self, headers: dict[str, str], method: str, path: str
    ) -> tuple[dict[str, Any], str | None] | str:
        """The authorizer's context and usage key, or the gateway response to answer with."""
        if not self.authorizer:
            return {}, None
        header = self.authorizer.get("Identity", {}).get("Header", "Authorization")
        token = _header(headers, header)
        if not token:
            return "UNAUTHORIZED"  # API Gateway does not call the authorizer without it
        arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:local/{self.stage}/{method}{path}"
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}
        try:
            policy = self.lambdas.invoke(self.authorizer["FunctionArn"], event)
        except Exception as error:
            return "UNAUTHORIZED" if str(error) == "Unauthorized" else "AUTHORIZER_FAILURE"
        statements = policy.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            return "ACCESS_DENIED"
        usage_key = policy.get("usageIdentifierKey")
        if self.api_key_required and not usage_key:
            return "INVALID_API_KEY"  # a key that no usage plan holds answers the same
        return {"principalId": policy.get("principalId")} | policy.get("context", {}), usage_key

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        if method == "GET" and swagger.serves(path):
            return swagger.answer(path)
        route, params = next(
            (
                (r, p)
                for r in self.routes
                if (p := r.match(path)) is not None and r.method == method
            ),
            (None, None),
        )
        request_id = str(uuid.uuid4())
        if route is None:
            # API Gateway answers an unknown route before any authorizer runs.
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id)
        authorized = self.authorize(headers, method, path)
        if isinstance(authorized, str):
            return self.gateway_response(authorized, request_id)
        authorizer_context, usage_key = authorized
        if not self.throttle(usage_key):
            return self.gateway_response("THROTTLED", request_id)
        query = parse_qs(parts.query, keep_blank_values=True)
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": request_id,
                "requestTimeEpoch": int(time.time() * 1000),
                "accountId": ACCOUNT,
                "apiId": "local",
                "identity": {"sourceIp": "127.0.0.1"},
                "authorizer": authorizer_context,
            },
            "body": body.decode("utf-8", errors="replace") if body else None,
            "isBase64Encoded": False,
        }
        try:
            answer = self.lambdas.invoke(self.function_names[route.function], event)
        except Exception:
            body_out = json.dumps({"message": "Internal server error"}).encode()
            return 502, {"Content-Type": "application/json"}, body_out
        if not isinstance(answer, dict) or not isinstance(answer.get("body") or "", str):
            # What API Gateway does with a proxy answer it cannot read.
            body_out = json.dumps({"message": "Internal server error"}).encode()
            return 502, {"Content-Type": "application/json"}, body_out
        out_headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        return int(answer.get("statusCode", 200)), out_headers, (answer.get("body") or "").encode()

    # --- HTTP ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                status, out_headers, out = api.handle(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in out_headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://{host}:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def _stage_bucket(api: dict[str, Any]) -> TokenBucket | None:
    """The stage's default throttling (MethodSettings on /* and *), as one bucket."""
    for setting in api.get("MethodSettings", []):
        default = setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*"
        if default and "ThrottlingRateLimit" in setting:
            rate = float(setting["ThrottlingRateLimit"])
            return TokenBucket(rate, int(setting.get("ThrottlingBurstLimit", rate)))
    return None


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")
