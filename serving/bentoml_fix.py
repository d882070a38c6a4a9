"""Work-around for a defect of BentoML 1.4.39 (the version pinned in pyproject.toml).

`bentoml/_internal/server/http/traffic.py`, `TimeoutMiddleware.__call__`, schedules
`loop.call_later(timeout, ...)` for every request and never cancels it, so each request's
context (its future, OpenTelemetry span, closures) stays alive for `traffic.timeout`
(60 s by default). Under load, worker memory grows a few KB per request and full garbage
collections grow to hundreds of milliseconds: p99 latency of 160-450 ms on a no-op
endpoint while p50 is ~1 ms. The replacement below is the same middleware with the timer
cancelled when the request ends. Drop this module when BentoML fixes it: `apply()` logs a
warning on any other version.

`freeze_heap()` moves everything alive after the models are loaded into the permanent
generation, so the collector stops re-scanning the model arrays' Python objects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import bentoml

FIXED_VERSION = "1.4.39"
log = logging.getLogger("storewise.serving")


def apply() -> bool:
    from bentoml._internal.server.http import traffic

    if bentoml.__version__ != FIXED_VERSION:
        log.warning(
            "bentoml %s is not %s: check whether serving/bentoml_fix.py is still needed",
            bentoml.__version__,
            FIXED_VERSION,
        )
        return False
    middleware = traffic.TimeoutMiddleware
    if getattr(middleware, "_storewise_fixed", False):
        return True
    JSONResponse = traffic.JSONResponse  # noqa: N806

    async def call(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message: Any) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        future = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
        try:
            await waiter
        except TimeoutError:
            if future.cancel():
                response = JSONResponse(
                    {"error": f"Not able to process the request in {self.timeout} seconds"}, status_code=504
                )
                await response(scope, receive, send)
        else:
            await future
        finally:
            timer.cancel()  # the fix: without it the request's context lives `timeout` seconds more

    middleware.__call__ = call  # type: ignore[method-assign]
    middleware._storewise_fixed = True  # type: ignore[attr-defined]
    return True


def freeze_heap() -> None:
    gc.collect()
    gc.freeze()
