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
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yarl import URL

from ccc_gateway.auth.oauth.client import endpoints_for_site
from ccc_gateway.config import crm_checks
from ccc_gateway.config.crm_events_values import crm_events_section
from ccc_gateway.config.generation import (
    allowed_actions,
    ccc_version,
    check_instance_generation,
)
from ccc_gateway.config.model import (
    CONTROL_CONNECTIONS,
    DEFAULT_SDK_SCRIPTS,
    DEFAULT_SDK_STYLES,
    AliyunConfig,
    CccConfig,
    Config,
    ConfigError,
    ListenConfig,
    LogConfig,
    SessionConfig,
    SoftphoneConfig,
    TlsConfig,
    UiConfig,
    UpstreamConfig,
)
from ccc_gateway.config.softphone_values import softphone_section
from ccc_gateway.config.values import (
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
    return warnings + crm_checks.crm_warnings(config)


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
    ccc = _ccc(root.section("ccc"))  # first: the softphone's defaults follow its version
    config = Config(
        listen=_listen(root.section("listen")),
        tls=_tls(root.section("tls")),
        upstream=_upstream(root.section("upstream")),
        aliyun=_aliyun(root.section("aliyun")),
        ccc=ccc,
        session=_session(root.section("session")),
        softphone=softphone_section(root.section("softphone"), ccc.version),
        log=_log(root.section("log")),
        ui=_ui(root.section("ui")),
        crm_events=crm_events_section(root.section("crm_events")),
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
        preserve_host=s.get("preserve_host", as_bool, d.preserve_host),
        rewrite_body_urls=s.get("rewrite_body_urls", as_bool, d.rewrite_body_urls),
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
    if "redirect_uri" in s.data and (problem := crm_checks.redirect_uri_problem(redirect_uri)):
        s.problems.add(s.key_path("redirect_uri"), problem)
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
        version=s.get("version", ccc_version, CccConfig.version),
        auth=s.get("auth", choice("auto", "bearer", "sts"), CccConfig.auth),
        # Both default (when absent) to what the configured generation needs.
        allowed_actions=s.get("allowed_actions", allowed_actions, CccConfig.allowed_actions),
        reshape=s.get("reshape", as_bool, CccConfig.reshape),
        timeout=s.get("timeout", parse_duration, CccConfig.timeout),
        max_request_size=s.get("max_request_size", parse_size, CccConfig.max_request_size),
        max_response_size=s.get("max_response_size", parse_size, CccConfig.max_response_size),
    )
    check_instance_generation(s, result)
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
        crm_binding=s.get("crm_binding", crm_checks.as_binding_mode, d.crm_binding),
        whoami_cache_ttl=s.get("whoami_cache_ttl", parse_duration, d.whoami_cache_ttl),
        login_state_ttl=s.get("login_state_ttl", parse_duration, d.login_state_ttl),
        store=s.get("store", as_store_url, d.store),
        crm_session_cookie=s.get(
            "crm_session_cookie", crm_checks.as_cookie_name, d.crm_session_cookie
        ),
    )
    crm_checks.check_binding(s, result)
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


def _ui(s: Section) -> UiConfig:
    d = UiConfig()
    result = UiConfig(language=s.get("language", choice("auto", "zh-CN", "en"), d.language))
    s.reject_unknown()
    return result


__all__ = [
    "CONTROL_CONNECTIONS",
    "DEFAULT_SDK_SCRIPTS",
    "DEFAULT_SDK_STYLES",
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
    "UiConfig",
    "UpstreamConfig",
    "as_int",
    "load_config",
    "parse_config",
]
