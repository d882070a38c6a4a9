"""ASGI middleware of the service: the endpoints speak JSON only.

BentoML parses a body by its Content-Type; a form type it cannot parse (multipart without a
boundary, say) raised inside BentoML and came back as a 500. A request with any type but
JSON (or none) to an API route is answered 415 here, before BentoML parses it.
"""

from __future__ import annotations

import json
from typing import Any

ALLOWED = ("application/json", "")
API_PATHS = frozenset(
    {"/recommend", "/similar", "/price", "/quote", "/feedback", "/info", "/reload", "/noop"}
)


class JsonOnly:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in API_PATHS:
            headers = dict(scope.get("headers") or [])
            content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if content_type not in ALLOWED:
                body = json.dumps(
                    {"error": f"Content-Type must be application/json, not '{content_type}'"}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 415,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
