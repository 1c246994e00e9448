"""The status page's web application: server-rendered HTML (Starlette routes, Jinja2 templates), read-only.

Pages: the fleet (``/``), a provider (``/providers/NAME``, with its explain form), the placement queue
(``/queue``), the recent decisions (``/decisions``) and the replicas (``/replicas``). Every page is whole HTML that works without
JavaScript (a ``<noscript>`` refresh reloads it); with JavaScript, ``static/refresh.js`` fetches the same
URL every ``refresh_seconds`` and swaps the parts marked ``data-live`` in place.

Reads go through the services: the live fleet as :mod:`hodei.services.status` copies it, a provider, its
history and workers through the providers and workers services (configs masked there, as for the API),
explanations through the selection service, decisions from the daemon's ring. The fleet page's work
(filter, count, sort, render) runs off the event loop, on a copy taken in it.

Access: with ``[api] token_file`` set, every page asks for that token, as the API does: the header
``authorization: Bearer TOKEN``, or a sign-in form that sets an HttpOnly, SameSite=Strict cookie holding a
digest of the token (never the token: the cookie cannot be replayed as the API's bearer token). Beyond
loopback the settings refuse to load without the token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hodei import limits
from hodei.documents import parse_text, sniff_format
from hodei.errors import HodeiError, InvalidInput, NotFound, Problem
from hodei.redaction import quote, shorten
from hodei.services import status
from hodei.services.decisions import Decisions
from hodei.services.providers import LocalProviders
from hodei.services.selection import LocalSelection
from hodei.services.views import DaemonInfo
from hodei.services.workers import LocalWorkers

log = logging.getLogger("hodei.ui")

COOKIE = "hodei_ui_session"
# The most a form may send (the sign-in token, a job's requirements): a page is not an upload.
FORM_BYTES = 16 * 1024
HISTORY_SHOWN = 50
WORKERS_SHOWN = 50
DECISIONS_SHOWN = 100
OWNED_SHOWN = 50
FLEET_PAGES_KEPT = 64
# How long a fleet page computed for a fleet that changed since may still be shown: less than the shortest
# refresh (1 s), so a change appears within the refresh interval all the same.
FLEET_PAGE_SECONDS = 0.5
# The pages in the header, in order: a new page is a route, a template and a line here.
NAV = (("/", "Fleet"), ("/queue", "Queue"), ("/decisions", "Recent decisions"), ("/replicas", "Replicas"))
QUEUE_SHOWN = 100
# No inline script or style anywhere: the page's own files only, and no frame may hold it.
_HEADERS = {
    "content-security-policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True)
class Replica:
    """One live daemon: its row, whether it is the one answering, and the providers it owns."""

    info: DaemonInfo
    me: bool
    owned: int
    owned_names: tuple[str, ...]  # the first :data:`OWNED_SHOWN`, by name


@dataclass(frozen=True)
class UiServices:
    """What the status page reads, handed over by the daemon.

    :param live: the daemon's live fleet (read in the event loop only).
    :param call: runs a blocking service call off the event loop (the daemon's database link).
    :param replicas: the live daemons and what each owns.
    :param status_line: the daemon's state in one line (``ready: 12 providers``).
    """

    live: status.LiveFleet
    providers: LocalProviders
    selection: LocalSelection
    workers: LocalWorkers
    decisions: Decisions
    call: Callable[..., Awaitable[Any]]
    replicas: Callable[[], Awaitable[list[Replica]]]
    status_line: Callable[[], str]


def session_value(token: str) -> str:
    """What the sign-in cookie holds: a digest of the token, never the token."""
    return hmac.new(token.encode("utf-8"), b"hodei status page session", hashlib.sha256).hexdigest()


def _age(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("hodei.ui", "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["age"] = _age
    env.filters["iso"] = lambda moment: moment.isoformat() if moment else ""
    env.filters["query"] = lambda values: urllib.parse.urlencode(values)
    env.filters["quote"] = lambda value: urllib.parse.quote(str(value), safe="")
    return env


def _safe_next(target: str) -> str:
    """Where to go after signing in: a path of this site only (never another host: ``//host``, ``/\\host``)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, bounded (a page's form is small)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            raise InvalidInput(Problem("form", f"more than {FORM_BYTES} bytes"))
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(Problem("form", "is not a form")) from None
    return dict(pairs)


class _SecurityHeaders:
    """Every answer says what a browser may do with it (no frames, no inline code, no caching of pages)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in _HEADERS.items()]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class StatusPage:
    """The application: ``app`` is the ASGI callable the server runs.

    :param token: the API's token (``[api] token_file``), asked of every page; None: pages are open
        (loopback only: the settings refuse anything else without a token).
    :param secure: served over HTTPS (the cookie is then marked Secure).
    """

    def __init__(self, services: UiServices, *, refresh_seconds: float, token: str | None = None,
                 secure: bool = False):
        self.services = services
        self.refresh = refresh_seconds
        self.env = _environment()
        self.protect(token, secure=secure)
        self._limiter: anyio.CapacityLimiter | None = None
        # (filter, page number) -> (the fleet's version, when, the page computed for them).
        self._fleet_pages: dict[tuple[status.FleetFilter, int], tuple[int, float, status.FleetPage]] = {}
        self._guessing: anyio.Lock | None = None
        routes = [
            Route("/", self.fleet, methods=["GET", "HEAD"]),
            Route("/providers/{name:path}", self.provider, methods=["GET", "HEAD"]),
            Route("/queue", self.queue, methods=["GET", "HEAD"]),
            Route("/decisions", self.decisions, methods=["GET", "HEAD"]),
            Route("/replicas", self.replicas, methods=["GET", "HEAD"]),
            Route("/signin", self.signin, methods=["GET", "HEAD", "POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("hodei.ui", "static")]), name="static"),
        ]
        self.app: ASGIApp = _SecurityHeaders(Starlette(routes=routes, exception_handlers={
            404: self._not_found, 405: self._not_allowed, Exception: self._failed}))

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function`` in a worker thread, one page at a time: however many browsers refresh at once, one
        thread competes with the event loop (which answers the API) for the interpreter, and the rest wait."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)  # made in the loop, where it is used
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)

    # -- access -----------------------------------------------------------------------------------

    def protect(self, token: str | None, *, secure: bool) -> None:
        """Ask every page for ``token`` (None: open); ``secure``: served over HTTPS."""
        self.token = token
        self.secure = secure
        self._session = session_value(token) if token is not None else None

    def _signed_in(self, request: Request) -> bool:
        if self.token is None or self._session is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._session.encode())

    async def _render(self, request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200,
                      refresh: bool = True, headers: Mapping[str, str] | None = None) -> Response:
        signed_in = self._signed_in(request)
        values = {"request_path": request.url.path, "refresh": self.refresh if refresh else None, "nav": NAV,
                  "daemon": self.services.status_line() if signed_in else "", "now": datetime.now(UTC),
                  "signed_in": self.token is not None and signed_in, **context}
        body = await self._off_loop(self.env.get_template(template).render, values)
        return HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))

    async def _refused(self, request: Request, problem: str = "") -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return await self._render(request, "signin.html", {"next": _safe_next(target), "problem": problem,
                                                           "title": "Sign in"},
                                  status_code=401, refresh=False, headers={"www-authenticate": 'Bearer realm="hodei"'})

    async def signin(self, request: Request) -> Response:
        if self.token is None:
            return RedirectResponse("/", status_code=303)
        if request.method != "POST":
            target = _safe_next(request.query_params.get("next", "/"))
            return await self._render(request, "signin.html", {"next": target, "problem": "", "title": "Sign in"},
                                      refresh=False)
        try:
            form = await _form(request)
        except InvalidInput as exc:
            return await self._render(request, "signin.html", {"next": "/", "problem": str(exc), "title": "Sign in"},
                                      status_code=400, refresh=False)
        target = _safe_next(form.get("next", "/"))
        given = form.get("token", "").strip()
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            if self._guessing is None:
                self._guessing = anyio.Lock()
            async with self._guessing:  # a wrong guess costs a second, and guesses take turns
                await anyio.sleep(1.0)
            return await self._render(request, "signin.html", {
                "next": target, "title": "Sign in",
                "problem": "That is not the token in [api] token_file." if given else "Enter the token."},
                status_code=401, refresh=False)
        response = RedirectResponse(target, status_code=303)
        assert self._session is not None
        response.set_cookie(COOKIE, self._session, httponly=True, samesite="strict", secure=self.secure, path="/")
        return response

    async def signout(self, request: Request) -> Response:
        response = RedirectResponse("/signin" if self.token is not None else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure)
        return response

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        return await self._render(request, "error.html", {"title": "Not found", "problem": "There is no such page."},
                                  status_code=404, refresh=False)

    async def _failed(self, request: Request, exc: Exception) -> Response:
        # Logged for the operator (the log handlers scrub credentials); the page says only that it failed.
        log.error("status page: %s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__,
                  shorten(str(exc), 300))
        return Response("the status page failed to answer; the daemon's log says why\n", status_code=500,
                        media_type="text/plain")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return Response("only GET and HEAD (this page is read-only)\n", status_code=405,
                        media_type="text/plain", headers={"allow": "GET, HEAD"})

    # -- pages ------------------------------------------------------------------------------------

    async def fleet(self, request: Request) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        query = request.query_params
        wanted = status.FleetFilter(status=query.get("status", ""), health=query.get("health", ""),
                                    provider_type=query.get("type", ""), region=query.get("region", ""),
                                    name=query.get("name", "")[:200])
        try:
            number = int(query.get("page", "1"))
        except ValueError:
            number = 1
        page = await self._fleet_page(wanted, number)
        return await self._render(request, "fleet.html", {
            "title": "Fleet", "page": page, "wanted": wanted, "statuses": status.STATUSES, "healths": status.HEALTHS,
            "page_size": status.PAGE_SIZE})

    async def _fleet_page(self, wanted: status.FleetFilter, number: int) -> status.FleetPage:
        """The page computed for this view of the live fleet, shared by every browser that asks for it while
        the fleet is unchanged, or within :data:`FLEET_PAGE_SECONDS` of its computation (a fleet being checked
        changes hundreds of times a second: each view is then computed at most once in that time, whatever
        the number of browsers refreshing it)."""
        live = self.services.live
        version, now = live.version, time.monotonic()
        cached = self._fleet_pages.get((wanted, number))
        if cached is not None and (cached[0] == version or now - cached[1] < FLEET_PAGE_SECONDS):
            return cached[2]
        seen = status.snapshot(live)  # in the loop: the fleet changes only there
        page: status.FleetPage = await self._off_loop(status.fleet_page, seen, wanted, number)
        if len(self._fleet_pages) >= FLEET_PAGES_KEPT:
            self._fleet_pages.clear()
        self._fleet_pages[(wanted, number)] = (version, now, page)
        return page

    async def provider(self, request: Request) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        name = request.path_params["name"]
        call = self.services.call
        try:
            if len(name) > limits.NAME_CHARS or "\x00" in name:  # no provider has it: the database is not asked
                raise NotFound(name)
            view = await call(self.services.providers.get, name)
            history, _ = await call(self.services.providers.history_page, view.id, HISTORY_SHOWN)
            workers, more_workers = await self.services.workers.page(provider=str(view.id), limit=WORKERS_SHOWN)
        except NotFound:
            return await self._render(request, "error.html", {
                "title": "No such provider", "problem": f"There is no provider named {quote(name)}."},
                status_code=404, refresh=False)
        except InvalidInput as exc:
            return await self._render(request, "error.html", {"title": "Not a provider", "problem": str(exc)},
                                      status_code=400, refresh=False)
        except HodeiError as exc:  # the database is away or slow: the page says so, and the next refresh retries
            return await self._render(request, "error.html", {"title": "Unavailable", "problem": str(exc)},
                                      status_code=503, refresh=True)
        text = request.query_params.get("requirements")
        explanation, problem = None, ""
        if text is not None:
            try:
                explanation = await self._off_loop(self._explain, view.name, text)
            except HodeiError as exc:
                problem = str(exc)
        return await self._render(request, "provider.html", {
            "title": view.name, "view": view, "document": view.document, "state": view.state, "history": history,
            "workers": workers, "more_workers": bool(more_workers), "requirements": text if text is not None else "{}",
            "explanation": explanation, "problem": problem,
            "config": _flatten(view.document.get("config")),
        }, refresh=text is None)

    def _explain(self, name: str, text: str) -> Any:
        if len(text.encode("utf-8")) > FORM_BYTES:
            raise InvalidInput(Problem("requirements", f"more than {FORM_BYTES} bytes"))
        document = parse_text(text, sniff_format(text), "the form", field="requirements") if text.strip() else {}
        return self.services.selection.explain(name, document)

    async def queue(self, request: Request) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        after = request.query_params.get("after", "")
        try:
            entries, following = await self.services.workers.queue_page(limit=QUEUE_SHOWN, page_token=after)
        except InvalidInput as exc:  # a token not of this page's making
            return await self._render(request, "error.html", {"title": "Queue", "problem": str(exc)},
                                      status_code=400, refresh=False)
        except HodeiError as exc:
            return await self._render(request, "error.html", {"title": "Unavailable", "problem": str(exc)},
                                      status_code=503)
        return await self._render(request, "queue.html", {
            "title": "Queue", "entries": entries, "following": following, "first": after == ""})

    async def decisions(self, request: Request) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        entries = self.services.decisions.latest(DECISIONS_SHOWN)
        return await self._render(request, "decisions.html", {"title": "Recent decisions", "entries": entries})

    async def replicas(self, request: Request) -> Response:
        if not self._signed_in(request):
            return await self._refused(request)
        replicas = await self.services.replicas()
        return await self._render(request, "replicas.html", {
            "title": "Replicas", "replicas": replicas, "shown": OWNED_SHOWN,
            "total": sum(r.owned for r in replicas)})


def _flatten(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A (masked) config as dotted keys and their values, for a table."""
    if not isinstance(config, Mapping):
        return [] if config is None else [(prefix or "config", str(config))]
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            rows += _flatten(value, path)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            rows.append((path, ", ".join(str(item) for item in value)))
        else:
            rows.append((path, "" if value is None else str(value)))
    return rows


__all__ = ["COOKIE", "Replica", "StatusPage", "UiServices", "session_value"]
