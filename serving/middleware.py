"""ASGI middleware of the service: the endpoints speak JSON only; admin endpoints need the
admin token.

BentoML parses a body by its Content-Type; a form type it cannot parse (multipart without a
boundary, say) raised inside BentoML and came back as a 500. A request with any type but
JSON (or none) to an API route is answered 415 here, before BentoML parses it.

`/reload` and `/noop` are for operators, not the storefront: they answer only a request
carrying `Authorization: Bearer <STOREWISE_ADMIN_TOKEN>` (compared in constant time).
With no token set they are refused (403) for everyone; a wrong or missing token is a 401.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

ALLOWED = ("application/json", "")
ADMIN_PATHS = frozenset({"/reload", "/noop"})
API_PATHS = frozenset({"/recommend", "/similar", "/price", "/quote", "/feedback", "/info"}) | ADMIN_PATHS


async def answer(
    send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class JsonOnly:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in API_PATHS:
            headers = dict(scope.get("headers") or [])
            content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if content_type not in ALLOWED:
                await answer(send, 415, f"Content-Type must be application/json, not '{content_type}'")
                return
        await self.app(scope, receive, send)


class AdminOnly:
    """`token` is asked on each admin request, not once: the service's settings are the
    module's `SETTINGS`, which an in-process test replaces after the app is made."""

    def __init__(self, app: Any, token: Callable[[], str | None]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in ADMIN_PATHS:
            token = self.token()
            if not token:
                await answer(send, 403, "admin endpoints are off: set STOREWISE_ADMIN_TOKEN to use them")
                return
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {token}".encode()):
                await answer(
                    send,
                    401,
                    "admin endpoint: send 'Authorization: Bearer <STOREWISE_ADMIN_TOKEN>'",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)
