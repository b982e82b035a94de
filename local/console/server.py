"""The console's pages: a small HTTP server on 127.0.0.1 rendering Jinja2 templates."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from http import cookies
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from local.console.mask import mask, pretty
from local.console.reads import TERMINAL, Reads, charges, explained, kst
from local.console.words import LANGUAGES, words
from local.http_server import LocalHTTPServer

HERE = Path(__file__).resolve().parent
REGION = "ap-northeast-2"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
OUTCOMES = ("SUCCEEDED", "REJECTED", "FAILED", "NEEDS_REVIEW")
PAGE_LIMIT = 300  # rows on one list page (a faults bench makes thousands)


def won(amount: Any) -> str:
    return f"₩{amount:,}" if isinstance(amount, int) else "–"


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["won"] = won
    env.filters["kst"] = kst
    env.filters["q"] = lambda value: urllib.parse.quote(str(value), safe="")
    env.filters["seconds"] = lambda s: "" if s is None else (f"{s:.3f}s" if s < 10 else f"{s:.1f}s")
    return env


class Console:
    """Pages over the stack's reads; the review decision goes to the operator API, signed."""

    def __init__(self, env: dict[str, str], clients: Callable[[str], Any], store: Any) -> None:
        self.env = env
        self.reads = Reads(env, clients, store)
        self.templates = _templates()
        self.server: LocalHTTPServer | None = None

    # --- serving -------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        console = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # one line per page is noise
                pass

            def do_GET(self) -> None:
                console.answer(self, "GET")

            def do_POST(self) -> None:
                console.answer(self, "POST")

        self.server = LocalHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(request.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        jar = cookies.SimpleCookie(request.headers.get("Cookie", ""))
        lang = query.get("lang") or (jar["lang"].value if "lang" in jar else "ko")
        lang = lang if lang in LANGUAGES else "ko"
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
        try:
            status, body, kind = self.route(method, parts, query, lang, request)
        except Exception as error:  # a page that breaks shows why, the console stays up
            status, kind = 500, "text/plain; charset=utf-8"
            body = f"console error: {type(error).__name__}: {error}".encode()
        request.send_response(status)
        if status in (302, 303):
            request.send_header("Location", body.decode())
            body = b""
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        if "lang" in query:
            request.send_header("Set-Cookie", f"lang={lang}; Path=/; SameSite=Lax")
        request.end_headers()
        request.wfile.write(body)

    def route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        lang: str,
        request: BaseHTTPRequestHandler,
    ) -> tuple[int, bytes, str]:
        html = "text/html; charset=utf-8"
        if parts[:1] == ["static"] and parts[1:] == ["console.css"]:
            return 200, (HERE / "static" / "console.css").read_bytes(), "text/css; charset=utf-8"
        if method == "POST" and len(parts) == 4 and parts[0] == "reviews":
            length = int(request.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(request.rfile.read(length).decode()))
            return 303, self.decide(parts[2], form).encode(), html
        pages: dict[str, Callable[..., tuple[str, dict[str, Any]]]] = {
            "executions": self.executions_page,
            "execution": self.execution_page,
            "cancellations": self.cancellation_page,
            "payments": self.payment_page,
            "reviews": self.reviews_page,
            "mail": self.mail_page,
            "billing": self.billing_page,
        }
        if not parts:
            return 303, b"/executions", html
        page = pages.get(parts[0])
        if page is None or method != "GET":
            return 404, self.render("missing.html", lang, {}).encode(), html
        found = page(parts[1:], query)
        if found is None:
            return 404, self.render("missing.html", lang, {}).encode(), html
        template, context = found
        context["query"] = query
        context["here"] = "/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)
        return 200, self.render(template, lang, context).encode(), html

    def render(self, template: str, lang: str, context: dict[str, Any]) -> str:
        return self.templates.get_template(template).render(
            t=words(lang), lang=lang, languages=LANGUAGES, **context
        )

    # --- pages ---------------------------------------------------------------------------

    def executions_page(self, _: list[str], query: dict[str, str]) -> tuple[str, dict[str, Any]]:
        rows = self.reads.rows()
        machine, status = query.get("machine", ""), query.get("status", "")
        day, needle = query.get("date", ""), query.get("q", "").strip().lower()
        outcome = query.get("outcome", "")
        shown = [
            r
            for r in rows
            if (not machine or r.machine == machine)
            and (not status or r.status == status)
            and (not outcome or r.outcome == outcome)
            and (not day or kst(r.started).startswith(day))
            and (not needle or needle in r.search)
        ]
        return "executions.html", {
            "rows": shown[:PAGE_LIMIT],
            "total": len(shown),
            "machines": sorted(self.reads.machines()),
            "statuses": STATUSES,
            "outcomes": OUTCOMES,
        }

    def execution_page(self, _: list[str], query: dict[str, str]) -> tuple[str, dict[str, Any]]:
        view = self.reads.execution(query["arn"])
        given = view["given"]
        links: dict[str, Any] = {}
        if view["machine"] == "cancel-refund" and given.get("shop_id"):
            links = {
                "cancellation": f"/cancellations/{given['shop_id']}/{given.get('cancellation_id')}",
                "payment": f"/payments/{given['shop_id']}/{given.get('tno')}",
            }
        needles = [query["arn"], given.get("cancellation_id", "")]
        view["logs"] = self.reads.log_lines(needles)
        view["correlation_id"] = query["arn"]
        view["links"] = links
        view["charges"] = charges(self.reads.history(query["arn"]))
        return "execution.html", view

    def cancellation_page(self, parts: list[str], _: dict[str, str]) -> Any:
        if len(parts) != 2:
            return None
        record = self.reads.cancellation(*parts)
        if record is None:
            return None
        return "cancellation.html", {"c": record, "record": _record(record)}

    def payment_page(self, parts: list[str], _: dict[str, str]) -> Any:
        if len(parts) != 2:
            return None
        shop_id, tno = parts
        ours = self.reads.payment(shop_id, tno)
        if ours is None:
            return None
        cancels = self.reads.payment_cancellations(shop_id, tno)
        theirs = self.reads.sandbox_payment(tno)
        return "payment.html", {
            "p": ours,
            "kcp": theirs,
            "rows": _side_by_side(ours, cancels, theirs),
            "cancels": cancels,
            "kcp_cancels": (theirs or {}).get("cancels", []),
            "calls": self.reads.sandbox_calls(tno),
        }

    def reviews_page(self, _: list[str], query: dict[str, str]) -> tuple[str, dict[str, Any]]:
        cases = []
        for row in self.reads.rows():
            if row.machine != "cancel-refund" or row.outcome != "NEEDS_REVIEW":
                continue
            c = self.reads.cancellation(row.shop, row.name)
            if c is None or str(c.status) != "NEEDS_REVIEW":
                continue  # decided since, or corrected by the sweep
            ours = self.reads.payment(row.shop, row.tno)
            theirs = self.reads.sandbox_payment(row.tno)
            cases.append(
                {
                    "c": c,
                    "row": row,
                    "reasons": explained(list(c.reasons)),
                    "calls": self.reads.sandbox_calls(row.tno),
                    "sides": _side_by_side(
                        ours, self.reads.payment_cancellations(row.shop, row.tno), theirs
                    )
                    if ours
                    else [],
                }
            )
        return "reviews.html", {
            "cases": cases,
            "operator_api": self.env.get("OPERATOR_API_URL", ""),
            "sent": query.get("sent", ""),
            "refused": query.get("refused", ""),
        }

    def mail_page(self, _: list[str], query: dict[str, str]) -> tuple[str, dict[str, Any]]:
        letters = self.reads.mails()
        needle = query.get("q", "").strip().lower()
        if needle:
            letters = [m for m in letters if needle in json.dumps(m, ensure_ascii=False).lower()]
        chosen = next((m for m in letters if m["id"] == query.get("id")), None)
        return "mail.html", {
            "letters": letters[:PAGE_LIMIT],
            "chosen": chosen or (letters[0] if letters else None),
        }

    def billing_page(self, _: list[str], query: dict[str, str]) -> tuple[str, dict[str, Any]]:
        runs = []
        for row in self.reads.rows():
            if row.machine != "subscription-billing":
                continue
            described = self.reads.sfn.describe_execution(executionArn=row.arn)
            summary = _json_dict(described.get("output"))
            runs.append(
                {"row": row, "summary": summary, "charges": charges(self.reads.history(row.arn))}
            )
        return "billing.html", {"runs": runs}

    # --- the decision ----------------------------------------------------------------------

    def decide(self, cancellation_id: str, form: dict[str, str]) -> str:
        """POST the operator API's decision, SigV4-signed with the stack's operator keys;
        answers where the browser goes next (the review page, saying how it went)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        base = self.env.get("OPERATOR_API_URL", "").rstrip("/")
        if not base:
            return "/reviews?refused=" + urllib.parse.quote("no operator API on this stack")
        body = json.dumps({"outcome": form.get("outcome", ""), "note": form.get("note", "")})
        url = f"{base}/v1/reviews/{urllib.parse.quote(cancellation_id, safe='')}/decision"
        signed = AWSRequest(
            method="POST", url=url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        credentials = Credentials(
            self.env.get("OPERATOR_AWS_ACCESS_KEY_ID", ""),
            self.env.get("OPERATOR_AWS_SECRET_ACCESS_KEY", ""),
        )
        SigV4Auth(credentials, "execute-api", REGION).add_auth(signed)
        request = urllib.request.Request(  # noqa: S310 (the stack's own operator API)
            url, data=body.encode(), method="POST", headers=dict(signed.headers.items())
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                answer.read()
            return f"/reviews?sent={urllib.parse.quote(cancellation_id)}"
        except urllib.error.HTTPError as error:
            problem = _json_dict(error.read().decode() or "{}")
            said = problem.get("detail") or problem.get("title") or f"HTTP {error.code}"
            return "/reviews?refused=" + urllib.parse.quote(f"{cancellation_id}: {said}")
        except urllib.error.URLError as error:
            return "/reviews?refused=" + urllib.parse.quote(f"{cancellation_id}: {error.reason}")


# --- shaping ---------------------------------------------------------------------------------


def _json_dict(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record(c: Any) -> str:
    """The cancellation as its ledger holds it, masked, for the record page."""
    from dataclasses import asdict

    document = json.loads(json.dumps(asdict(c), default=str))
    return pretty(json.dumps(mask(document)))


def _side_by_side(
    ours: Any, cancels: list[Any], theirs: dict[str, Any] | None
) -> list[dict[str, Any]]:
    succeeded = [c for c in cancels if str(c.status) == "SUCCEEDED"]
    open_ = [c for c in cancels if str(c.status) not in TERMINAL | {"SUCCEEDED"}]
    open_ += [c for c in cancels if str(c.status) == "NEEDS_REVIEW"]
    theirs = theirs or {}
    kcp_cancels = theirs.get("cancels", [])
    rows = [
        ("amount", ours.amount, theirs.get("amount")),
        ("balance", ours.balance, theirs.get("balance")),
        ("payment_status", str(ours.status), theirs.get("status")),
        ("method", str(ours.method), theirs.get("method")),
        ("order_id", ours.order_id, theirs.get("order_id")),
        ("cancels", len(succeeded), len(kcp_cancels)),
        (
            "cancelled",
            sum(c.amount or 0 for c in succeeded),
            sum(int(k.get("amount") or 0) for k in kcp_cancels),
        ),
    ]
    shown = []
    for name, mine, kcp in rows:
        money = name in ("amount", "balance", "cancelled")
        shown.append(
            {
                "field": name,
                "ours": won(mine) if money else mine,
                "kcp": (won(kcp) if money else kcp) if theirs else "–",
                "differs": bool(theirs) and mine != kcp,
            }
        )
    shown.append(
        {
            "field": "held",
            "ours": won(ours.balance - ours.available) if ours.available >= 0 else "–",
            "kcp": "–",
            "differs": False,
            "note": ", ".join(c.cancellation_id for c in open_),
        }
    )
    return shown


def now() -> datetime:
    return datetime.now(UTC)
