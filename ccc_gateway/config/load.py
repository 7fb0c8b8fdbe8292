"""The gateway's configuration: typed, frozen, validated all at once.

`load_config(path)` reads YAML, expands `${NAME}` / `${NAME:-default}` from the environment,
and builds `Config`. Every problem (unknown key, wrong type, missing file, unset variable) is
collected with its key path and raised together as `ConfigError`, so an operator fixes a
configuration in one go. Defaults are written once, here, as the dataclass field defaults.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from yarl import URL

from ccc_gateway.auth.oauth.client import Endpoints, endpoints_for_site
from ccc_gateway.ccc.pop.actions import WORKBENCH_ACTIONS
from ccc_gateway.config.values import (
    IpNetwork,
    Problems,
    Secret,
    Section,
    as_bool,
    as_http_url,
    as_int,
    as_network,
    as_port,
    as_positive_int,
    as_readable_file,
    as_relative_path,
    as_str,
    choice,
    list_of,
    parse_duration,
    parse_size,
)

log = logging.getLogger(__name__)

DAY = 86400.0
MiB = 1024 * 1024

# The workbench SDK as Alibaba's documentation loads it (protocol-relative in the seed demo;
# written with https here because the softphone page is always served over HTTPS).
DEFAULT_SDK_STYLES = ("https://g.alicdn.com/acca/workbench-sdk/0.2.8/main.min.css",)
DEFAULT_SDK_SCRIPTS = (
    "https://g.alicdn.com/crm/acc-phone/1.1.0/SIPml-api.js",
    "https://g.alicdn.com/crm/acc-phone/1.1.0/index.js",
    "https://g.alicdn.com/acca/workbench-sdk/0.2.8/workbenchSdk.js",
)


class ConfigError(Exception):
    """The configuration is unusable; `problems` lists every reason by key path."""

    def __init__(self, problems: list[str], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class ListenConfig:
    host: str = "0.0.0.0"  # noqa: S104 - a sidecar listens for the load balancer by default
    port: int = 8443
    workers: int = 1
    trusted_proxies: tuple[IpNetwork, ...] = ()
    http_redirect_port: int | None = None  # plain-HTTP listener that only redirects to HTTPS
    hsts_max_age: float = 365 * DAY  # 0 turns the Strict-Transport-Security header off
    shutdown_timeout: float = 30.0  # how long SIGTERM waits for in-flight requests
    metrics_port: int | None = None  # a separate plain-HTTP listener for /metrics only
    metrics_host: str = "127.0.0.1"  # loopback: metrics are for the node's scraper, not the world
    # Serve /aliyun/metrics and readiness details on the main port to any client (else only
    # to clients on this host; health.shows_details).
    public_metrics: bool = False
    # From a connection's start or its previous answer to a complete request head; also how
    # long an idle keep-alive connection stays open (above load balancers' usual 60 s).
    request_head_timeout: float = 75.0


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path


@dataclass(frozen=True)
class UpstreamConfig:
    url: URL = URL("http://127.0.0.1:8080")  # noqa: RUF009 - URL is immutable
    whoami_path: str | None = "/api/me"  # None: the CRM has no whoami; CRM binding is off
    login_path: str = "/login"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0  # waiting for the CRM's answer (and between body chunks)
    max_body_size: int = 100 * MiB  # request bodies the gateway forwards; 0 = no limit
    # Request bodies (uploads to the CRM, and the gateway's own API calls) must average this
    # many bytes a second (0 = no minimum), falling behind by at most `min_upload_rate_window`
    # seconds (the grace for a pause or a slow start); 408 otherwise.
    min_upload_rate: int = 1024
    min_upload_rate_window: float = 30.0
    upload_timeout: float = 600.0  # the whole request body to the CRM; 0 = no limit
    # Every connection to the CRM at once: pages get max_connections - max_websockets -
    # CONTROL_CONNECTIONS, websockets max_websockets, whoami and readiness the rest.
    max_connections: int = 100
    max_websockets: int = 20
    identity_headers: bool = False  # send X-Ccc-Agent-Upn / -Name to the CRM

    @property
    def page_connections(self) -> int:
        """Connections for proxied requests other than websockets (the proxy's own pool)."""
        return self.max_connections - self.max_websockets - CONTROL_CONNECTIONS


# Connections to the CRM kept for the whoami lookup and the readiness check: neither pages nor
# websockets can take them, so CRM binding and /aliyun/readyz work while those are saturated.
CONTROL_CONNECTIONS = 4


@dataclass(frozen=True)
class AliyunConfig:
    client_id: str
    client_secret: Secret
    redirect_uri: URL
    endpoints: Endpoints
    site: str = "china"
    scope: str | None = "openid aliuid profile"
    ca_file: Path | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class CccConfig:
    instance_id: str
    region: str = "cn-shanghai"
    endpoint: URL = URL("https://ccc.cn-shanghai.aliyuncs.com/")  # noqa: RUF009 - immutable
    version: str = "2017-07-05"
    auth: str = "auto"  # auto | bearer | sts
    allowed_actions: frozenset[str] | None = WORKBENCH_ACTIONS  # None: every action ("*")
    reshape: bool = True
    timeout: float = 10.0
    max_request_size: int = 64 * 1024
    max_response_size: int = 2 * MiB


@dataclass(frozen=True)
class SessionConfig:
    keys: tuple[Secret, ...]
    max_age: float = 30 * DAY  # absolute lifetime of an Alibaba sign-in in the gateway
    idle_timeout: float = 7 * DAY  # sign-in forgotten after this long unused
    refresh_leeway: float = 60.0  # refresh this long before the access token expires
    crm_binding: bool = True  # the sign-in belongs to the CRM user who made it
    whoami_cache_ttl: float = 5.0
    login_state_ttl: float = 600.0  # how long a started sign-in may take
    # redis[s]://[:password@]host:port/db keeps sign-ins in Redis, shared by replicas; None
    # keeps them in the cookie. A Secret: the URL may carry the password.
    store: Secret | None = None


@dataclass(frozen=True)
class SoftphoneConfig:
    inject: bool = True
    screen_pop_url: str = "/customer/phoneNumber/{caller}"
    screen_pop_target: str = "same-tab"  # same-tab | new-tab
    sdk_scripts: tuple[str, ...] = DEFAULT_SDK_SCRIPTS
    sdk_styles: tuple[str, ...] = DEFAULT_SDK_STYLES
    ajax_method: str = "post"
    # Click-to-call from page content waits for the agent's Call in the softphone: CRM content
    # (an invisible element over the page) could otherwise place a paid call with one click.
    confirm_dial: bool = True


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "text"  # text | json
    access_log: bool = True


@dataclass(frozen=True)
class Config:
    aliyun: AliyunConfig
    ccc: CccConfig
    session: SessionConfig
    tls: TlsConfig | None = None  # None only where something else terminates TLS (tests)
    listen: ListenConfig = field(default_factory=ListenConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    softphone: SoftphoneConfig = field(default_factory=SoftphoneConfig)
    log: LogConfig = field(default_factory=LogConfig)


def config_warnings(config: Config) -> list[str]:
    """Valid settings that weaken the gateway: `check-config` prints them and `run` logs them
    at start-up; neither fails on them."""
    warnings = []
    if config.listen.workers > 1 and config.session.store is None:
        warnings.append(
            f"listen.workers is {config.listen.workers} with the cookie session store: a "
            "sign-out is known only to the worker that handled it, and the other workers "
            "accept copies of the signed-out cookie until session.max_age; set session.store "
            "(Redis) so that a sign-out reaches every worker"
        )
    if config.softphone.ajax_method == "get":
        warnings.append(
            "softphone.ajax_method is get: the gateway serves only read-only actions over GET, "
            "so the softphone cannot sign in or change state; use post"
        )
    return warnings


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML file; raise ConfigError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(["file not found"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read: {exc}"], source) from None
    return parse_config(text, env if env is not None else os.environ, source)


def parse_config(text: str, env: Mapping[str, str], source: str = "configuration") -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source) from None
    problems = Problems()
    config = build_config(Section(data, "", problems, env))
    if problems:
        raise ConfigError(problems, source)
    return config


def build_config(root: Section) -> Config:
    config = Config(
        listen=_listen(root.section("listen")),
        tls=_tls(root.section("tls")),
        upstream=_upstream(root.section("upstream")),
        aliyun=_aliyun(root.section("aliyun")),
        ccc=_ccc(root.section("ccc")),
        session=_session(root.section("session")),
        softphone=_softphone(root.section("softphone")),
        log=_log(root.section("log")),
    )
    root.reject_unknown()
    return config


def _listen(s: Section) -> ListenConfig:
    d = ListenConfig()
    result = ListenConfig(
        host=s.get("host", as_str, d.host),
        port=s.get("port", as_port, d.port),
        workers=s.get("workers", as_positive_int, d.workers),
        trusted_proxies=s.get("trusted_proxies", list_of(as_network), d.trusted_proxies),
        http_redirect_port=s.get("http_redirect_port", as_port, d.http_redirect_port),
        hsts_max_age=s.get("hsts_max_age", parse_duration, d.hsts_max_age),
        shutdown_timeout=s.get("shutdown_timeout", parse_duration, d.shutdown_timeout),
        metrics_port=s.get("metrics_port", as_port, d.metrics_port),
        metrics_host=s.get("metrics_host", as_str, d.metrics_host),
        public_metrics=s.get("public_metrics", as_bool, d.public_metrics),
        request_head_timeout=s.get("request_head_timeout", parse_duration, d.request_head_timeout),
    )
    if result.request_head_timeout <= 0:
        s.problems.add(s.key_path("request_head_timeout"), "must be more than 0")
    if result.http_redirect_port == result.port:
        s.problems.add(s.key_path("http_redirect_port"), "must differ from listen.port")
    s.reject_unknown()
    return result


def _tls(s: Section) -> TlsConfig:
    result = TlsConfig(
        cert=s.get("cert", as_readable_file, Path(), required=True),
        key=s.get("key", as_readable_file, Path(), required=True),
    )
    s.reject_unknown()
    return result


def _upstream(s: Section) -> UpstreamConfig:
    d = UpstreamConfig()
    # An explicit null or "" turns the whoami lookup (and with it CRM binding) off.
    whoami_default = d.whoami_path if "whoami_path" not in s.data else None
    result = UpstreamConfig(
        url=s.get("url", as_http_url, d.url),
        whoami_path=s.get("whoami_path", as_relative_path, whoami_default),
        login_path=s.get("login_path", as_relative_path, d.login_path),
        connect_timeout=s.get("connect_timeout", parse_duration, d.connect_timeout),
        read_timeout=s.get("read_timeout", parse_duration, d.read_timeout),
        max_body_size=s.get("max_body_size", parse_size, d.max_body_size),
        min_upload_rate=s.get("min_upload_rate", parse_size, d.min_upload_rate),
        min_upload_rate_window=s.get(
            "min_upload_rate_window", parse_duration, d.min_upload_rate_window
        ),
        upload_timeout=s.get("upload_timeout", parse_duration, d.upload_timeout),
        max_connections=s.get("max_connections", as_positive_int, d.max_connections),
        max_websockets=s.get("max_websockets", as_int, d.max_websockets),
        identity_headers=s.get("identity_headers", as_bool, d.identity_headers),
    )
    if result.min_upload_rate_window <= 0:
        s.problems.add(s.key_path("min_upload_rate_window"), "must be more than 0")
    if result.max_websockets < 0:
        s.problems.add(s.key_path("max_websockets"), "cannot be negative (0: no websockets)")
    elif result.page_connections < 1:
        s.problems.add(
            s.key_path("max_connections"),
            f"must be more than max_websockets + {CONTROL_CONNECTIONS} (kept for whoami and "
            f"readiness): {result.max_connections} leaves no connection for pages",
        )
    s.reject_unknown()
    return result


_ENDPOINT_KEYS = ("authorize_url", "token_url", "revoke_url", "userinfo_url", "jwks_url")


def _aliyun(s: Section) -> AliyunConfig:
    site = s.get("site", choice("china", "international"), "china")
    endpoints = endpoints_for_site(site)
    overrides: dict[str, str] = {}
    for key in _ENDPOINT_KEYS:
        url = s.get(key, as_http_url, None)
        if url is not None:
            if url.scheme == "http":
                log.warning("aliyun.%s uses plain http: only acceptable for local tests", key)
            overrides[key] = str(url)
    issuer = s.get("issuer", as_str, None)
    if issuer:
        overrides["issuer"] = issuer
    redirect_uri = s.get(
        "redirect_uri", as_http_url, URL("https://invalid.invalid/"), required=True
    )
    if "redirect_uri" in s.data and redirect_uri.path != "/aliyun/auth/callback":
        s.problems.add(s.key_path("redirect_uri"), "its path must be /aliyun/auth/callback")
    scope = s.raw("scope")
    result = AliyunConfig(
        client_id=s.get("client_id", as_str, "", required=True),
        client_secret=Secret(s.get("client_secret", as_str, "", required=True)),
        redirect_uri=redirect_uri,
        endpoints=replace(endpoints, **overrides),
        site=site,
        scope=AliyunConfig.scope
        if "scope" not in s.data
        else (" ".join(str(scope).split()) or None),
        ca_file=s.get("ca_file", as_readable_file, None),
        timeout=s.get("timeout", parse_duration, AliyunConfig.timeout),
    )
    s.reject_unknown()
    return result


def _actions(value: Any) -> frozenset[str] | None:
    if value == "*":
        return None
    names = list_of(as_str)(value)
    if "*" in names:
        raise ValueError('write "*" alone (not in a list) to allow every action')
    return frozenset(names)


def _ccc(s: Section) -> CccConfig:
    region = s.get("region", as_str, CccConfig.region)
    default_endpoint = URL(f"https://ccc.{region}.aliyuncs.com/")
    endpoint = s.get("endpoint", as_http_url, default_endpoint)
    if endpoint.scheme == "http":
        log.warning("ccc.endpoint uses plain http: only acceptable for local tests")
    result = CccConfig(
        instance_id=s.get("instance_id", as_str, "", required=True),
        region=region,
        endpoint=endpoint,
        version=s.get("version", as_str, CccConfig.version),
        auth=s.get("auth", choice("auto", "bearer", "sts"), CccConfig.auth),
        allowed_actions=s.get("allowed_actions", _actions, CccConfig.allowed_actions),
        reshape=s.get("reshape", as_bool, CccConfig.reshape),
        timeout=s.get("timeout", parse_duration, CccConfig.timeout),
        max_request_size=s.get("max_request_size", parse_size, CccConfig.max_request_size),
        max_response_size=s.get("max_response_size", parse_size, CccConfig.max_response_size),
    )
    s.reject_unknown()
    return result


def as_session_key(value: Any) -> Secret:
    """A key from `ccc-gateway keygen`: 32 random bytes, urlsafe base64 (a Fernet key)."""
    text = as_str(value).strip()
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("not a session key: make one with `ccc-gateway keygen`")
    return Secret(text)


def as_store_url(value: Any) -> Secret:
    """`redis://host:port/db` or `rediss://…` (TLS); the password may be in the URL."""
    text = as_str(value).strip()
    try:
        url = URL(text)
    except ValueError:
        raise ValueError("not a URL") from None  # yarl's message would quote the password
    if url.scheme not in {"redis", "rediss"} or not url.host:
        # Never echo the value: it may hold a password.
        raise ValueError("expected redis://host:port/db or rediss://host:port/db")
    if url.path not in {"", "/"} and not url.path[1:].isdigit():
        raise ValueError("the path must be a database number, as in redis://host:6379/0")
    return Secret(text)


def _session(s: Section) -> SessionConfig:
    d = SessionConfig(keys=())
    no_keys: tuple[Secret, ...] = ()
    keys = s.get("keys", list_of(as_session_key), no_keys, required=True)
    if isinstance(s.data.get("keys"), list) and not s.data["keys"]:
        s.problems.add(s.key_path("keys"), "at least one key is needed")
    result = SessionConfig(
        keys=keys,
        max_age=s.get("max_age", parse_duration, d.max_age),
        idle_timeout=s.get("idle_timeout", parse_duration, d.idle_timeout),
        refresh_leeway=s.get("refresh_leeway", parse_duration, d.refresh_leeway),
        crm_binding=s.get("crm_binding", as_bool, d.crm_binding),
        whoami_cache_ttl=s.get("whoami_cache_ttl", parse_duration, d.whoami_cache_ttl),
        login_state_ttl=s.get("login_state_ttl", parse_duration, d.login_state_ttl),
        store=s.get("store", as_store_url, d.store),
    )
    s.reject_unknown()
    return result


def _screen_pop_url(value: Any) -> str:
    text = as_str(value).strip()
    if "{caller}" not in text:
        raise ValueError("must contain {caller}")
    if not text.startswith("/") or text.startswith("//"):
        raise ValueError("must be a path on the CRM, starting with a single /")
    return text


def _softphone(s: Section) -> SoftphoneConfig:
    d = SoftphoneConfig()
    result = SoftphoneConfig(
        inject=s.get("inject", as_bool, d.inject),
        screen_pop_url=s.get("screen_pop_url", _screen_pop_url, d.screen_pop_url),
        screen_pop_target=s.get(
            "screen_pop_target", choice("same-tab", "new-tab"), d.screen_pop_target
        ),
        sdk_scripts=s.get("sdk_scripts", list_of(as_str), d.sdk_scripts),
        sdk_styles=s.get("sdk_styles", list_of(as_str), d.sdk_styles),
        ajax_method=s.get("ajax_method", choice("post", "get"), d.ajax_method),
        confirm_dial=s.get("confirm_dial", as_bool, d.confirm_dial),
    )
    s.reject_unknown()
    return result


def _log(s: Section) -> LogConfig:
    d = LogConfig()
    result = LogConfig(
        level=s.get("level", choice("DEBUG", "INFO", "WARNING", "ERROR"), d.level),
        format=s.get("format", choice("text", "json"), d.format),
        access_log=s.get("access_log", as_bool, d.access_log),
    )
    s.reject_unknown()
    return result


__all__ = [
    "AliyunConfig",
    "CccConfig",
    "Config",
    "ConfigError",
    "ListenConfig",
    "LogConfig",
    "Secret",
    "SessionConfig",
    "SoftphoneConfig",
    "TlsConfig",
    "UpstreamConfig",
    "as_int",
    "load_config",
    "parse_config",
]
