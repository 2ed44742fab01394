"""Who may use the service: Host and Origin checks and the write token (ASGI middleware).

- Host: a request whose `Host` header names another machine than the one the server is bound
  to is refused (403) -- a DNS-rebinding page reaches 127.0.0.1 under its own name. A server
  bound to every interface (0.0.0.0, ::) cannot know its names: any Host, unless given
  `allowed_hosts`.
- Origin: a write (any method but GET/HEAD/OPTIONS) sent by a page of another origin is refused
  (403): a multipart POST is a CORS "simple request" that any web page may send. The service's
  own page (same origin) and clients that send no Origin (curl, scripts) pass.
- Token: when the server has one (always when bound beyond loopback), the write endpoints
  (POST/DELETE /songs) need it, as `Authorization: Bearer <token>`, an `X-Humdex-Token`
  header, or the cookie that `GET /?token=<token>` sets for the web page (HttpOnly,
  SameSite=Strict, so other sites' requests never carry it).
CORS stays off (no Access-Control-* answers) unless `cors_origins` names origins.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

PAGES = ("/", "/review")  # the web pages an owner opens with ?token=... to get the cookie
TOKEN_ENV = "HUMDEX_TOKEN"
TOKEN_COOKIE = "humdex_token"
TOKEN_HEADER = "x-humdex-token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class AccessConfig:
    """bind_host: the interface the server listens on; token: None = writes need no token
    (only sensible on loopback); allowed_hosts: more names clients may reach it by;
    cors_origins: origins whose pages may call the API (CORS answers and writes)."""

    bind_host: str = "127.0.0.1"
    token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if not host:  # no Host header (HTTP/1.0 clients): no browser sends such a request
            return True
        if self.bind_host in WILDCARD_HOSTS and not self.allowed_hosts:
            return True
        names = {*LOOPBACK_NAMES, *(h.lower() for h in self.allowed_hosts)}
        if self.bind_host not in WILDCARD_HOSTS:
            names.add(self.bind_host.lower().strip("[]"))
        return host in names


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def host_of(header: str) -> str:
    """The host part of a Host header ("127.0.0.1:8000", "[::1]:8000", "example.org")."""
    header = header.strip()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_write(method: str, path: str) -> bool:
    """The endpoints that change the catalog, or a mined folder's review answers."""
    path = path.rstrip("/")
    return (method == "POST" and path in ("/songs", "/review/api/answer")) \
        or (method == "DELETE" and path.startswith("/songs/"))


class AccessGuard:
    """ASGI middleware applying AccessConfig to every HTTP request."""

    def __init__(self, app: ASGIApp, config: AccessConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        refusal = self.refusal(method, path, headers)
        if refusal is not None:
            status, message = refusal
            await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
            return
        token = self._query_token(scope)
        if token is not None and method == "GET" and path in PAGES:  # the owner's link: set the cookie
            response = RedirectResponse(path, status_code=303)
            if self.config.token and hmac.compare_digest(token, self.config.token):
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, one-line reason) when the request is refused, else None."""
        host = host_of(headers.get("host", ""))
        if not self.config.host_allowed(host):
            return 403, (f"Host {host!r} is not this server's name (DNS rebinding?); "
                         "start humdex serve with --allowed-host to allow it")
        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not self._same_origin(origin, headers.get("host", "")):
                return 403, f"requests from the web page of {origin!r} may not change this server"
            if headers.get("sec-fetch-site") == "cross-site" and origin is None:
                return 403, "cross-site requests may not change this server"
        if self.config.token and is_write(method, path) and not self._has_token(headers):
            return 401, ("adding or removing songs needs this server's token: send "
                         "'Authorization: Bearer <token>', or open the link humdex serve printed")
        return None

    def _same_origin(self, origin: str, host_header: str) -> bool:
        if origin in self.config.cors_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()

    def _has_token(self, headers: dict[str, str]) -> bool:
        expected = self.config.token or ""
        offered = [headers.get(TOKEN_HEADER, "")]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                offered.append(value)
        return any(o and hmac.compare_digest(o.encode(), expected.encode()) for o in offered)

    @staticmethod
    def _query_token(scope: Scope) -> str | None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return values[0] if values else None


def access_from_args(args, env_token: str | None) -> tuple[AccessConfig, list[str]]:  # type: ignore[no-untyped-def]
    """The AccessConfig of `humdex serve`'s arguments, and the lines to print at start."""
    lines: list[str] = []
    token = None if args.no_token else (args.token or env_token or None)
    loopback = is_loopback(args.host)
    if token is None and not loopback and not args.no_token:
        token = new_token()
        lines.append(f"humdex: writes need a token; generated one: {token}")
    if token is not None:
        shown = "127.0.0.1" if args.host in WILDCARD_HOSTS else args.host
        lines.append(f"humdex: open http://{shown}:{args.port}/?token={token} to add and remove "
                     "songs from the web page")
    if args.host in WILDCARD_HOSTS:
        lines.append("humdex: WARNING: listening on every interface: anyone on the network can "
                     "search" + ("" if token else " AND ADD OR REMOVE SONGS (--no-token)"))
    elif not loopback and token is None:
        lines.append(f"humdex: WARNING: {args.host} is not loopback and writes need no token (--no-token)")
    return AccessConfig(bind_host=args.host, token=token, allowed_hosts=tuple(args.allowed_host),
                        cors_origins=tuple(args.cors_origin)), lines
