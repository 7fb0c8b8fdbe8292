"""POP RPC protocol code (parameters, signing, answer reshaping, action policy); no aiohttp.web."""
