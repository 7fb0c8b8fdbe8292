"""A lean HTTP/1.1 keep-alive client for the gateway's hot hops (the CRM proxy, the POP calls).

aiohttp's `ClientSession` does a great deal per request that a reverse proxy does not need:
URL joining and quoting, cookie jars, default headers, redirects, traces, a `ClientRequest`
and a `ClientResponse` with their timers (bench/RESULTS.md). This package keeps only the hop:
a pool of keep-alive connections to one origin (`pool.HttpPool`), a request head written as
one block of bytes (`head.build_head`), and the answer parsed by aiohttp's own C parser
(llhttp, and the body's `StreamReader` with its flow control), so parsing, chunked bodies and
back-pressure are the code aiohttp's client uses; only the protocol around the parser
(`connection.Connection`: one awaited answer, the read timeout, reuse bookkeeping) is ours.

What it does not do, on purpose: redirects, cookies, decompression, proxies from the
environment, HTTP/2. Websocket upgrades stay on aiohttp's client (proxy/websocket.py).

Failures are `errors.UpstreamError` and its subclasses, never aiohttp's own client errors;
callers (proxy/handler.py, ccc/client.py) map them to answers.

aiohttp internals used (aiohttp is pinned to the minor these were read in, pyproject.toml;
tests/test_aiohttp_internals.py checks each one exists, so a bump fails loudly):

- `aiohttp.base_protocol.BaseProtocol`, subclassed by `Connection`; its `_loop`,
  `_reading_paused`, `_drain_helper()` and `resume_reading()` (overridden).
- `aiohttp.http.HttpResponseParser` (the keyword arguments of its constructor, `feed_data`,
  `feed_eof`) and `aiohttp.http.RawResponseMessage`.
- `aiohttp.http_exceptions.HttpProcessingError` (what the parser raises).
- `aiohttp.helpers.set_exception` (the three-argument form) and `DEFAULT_CHUNK_SIZE`.
- `aiohttp.StreamReader.on_eof` (public class, undocumented method).
- Outside this package, proxy/handler.py reads `request.protocol.peername`
  (`aiohttp.web_protocol.RequestHandler.peername`, undocumented): the socket's peer, once
  per connection.
"""
