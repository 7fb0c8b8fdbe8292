"""Routes of the emulated signin.aliyun.com and oauth.aliyun.com, on Alibaba's real paths."""

from __future__ import annotations

from aiohttp import web

from .authorize import get_authorize, post_authorize
from .oidc import discovery_handler, jwks_handler, userinfo_handler
from .token_endpoint import revoke_handler, token_handler


def add_oauth_routes(app: web.Application) -> None:
    app.router.add_get("/oauth2/v1/auth", get_authorize)
    app.router.add_post("/oauth2/v1/auth", post_authorize)
    app.router.add_post("/v1/token", token_handler)
    app.router.add_post("/v1/revoke", revoke_handler)
    app.router.add_get("/v1/userinfo", userinfo_handler)
    app.router.add_get("/v1/keys", jwks_handler)
    app.router.add_get("/.well-known/openid-configuration", discovery_handler)
