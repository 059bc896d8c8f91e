"""Bearer-token authentication for every /api route (pure ASGI, before the body is read)."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from web.problems import problem


class BearerTokenAuth:
    def __init__(self, app: ASGIApp, token: str, prefix: str = "/api") -> None:
        if not token:
            raise ValueError("an API token is required")
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self.expected):  # constant time, whatever was sent
            detail = "send Authorization: Bearer <LEDGER_API_TOKEN>" if not given else "the bearer token is not valid"
            response = problem(
                401, "Unauthorized", detail, slug="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="ledger"'}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
