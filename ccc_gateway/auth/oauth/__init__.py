"""OAuth 2.0 / OIDC protocol code (PKCE, token client, id_token checks); no aiohttp.web."""
