"""The gateway's configuration as typed, frozen values, with every default written once.

`config/load.py` builds these from YAML and reports every problem by key path; the rest of
the gateway only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from yarl import URL

from ccc_gateway.auth.oauth.client import Endpoints
from ccc_gateway.ccc.pop.actions import (
    CCC2_VERSION,
    CLASSIC_VERSION,
    ActionPolicy,
    default_actions,
)
from ccc_gateway.config.values import IpNetwork, Secret

DAY = 86400.0
MiB = 1024 * 1024


@dataclass(frozen=True)
class SdkAssets:
    """The files of one browser SDK generation, in the order the page loads them."""

    scripts: tuple[str, ...]
    styles: tuple[str, ...]


# The workbench SDKs as Alibaba's documentation loads them from its CDN (protocol-relative
# there; written with https here because the softphone page is always served over HTTPS).
# v1: the classic workbench-sdk; v2: web-workbench-sdk 2.x (its last release, with the voice
# agent bar it needs); v3: the 3.x UI build (docs/softphone.md). Each is overridable with
# softphone.sdk_scripts / sdk_styles.
_CDN = "https://g.alicdn.com"
SDK_ASSETS: dict[str, SdkAssets] = {
    "v1": SdkAssets(
        scripts=(
            f"{_CDN}/crm/acc-phone/1.1.0/SIPml-api.js",
            f"{_CDN}/crm/acc-phone/1.1.0/index.js",
            f"{_CDN}/acca/workbench-sdk/0.2.8/workbenchSdk.js",
        ),
        styles=(f"{_CDN}/acca/workbench-sdk/0.2.8/main.min.css",),
    ),
    "v2": SdkAssets(
        scripts=(
            f"{_CDN}/cloudcallcenter-voip/web-agentbar-sdk/2.4.0/index.js",
            f"{_CDN}/cloudcallcenter/web-workbench-sdk/2.16.0/workbenchSdk.min.js",
        ),
        styles=(f"{_CDN}/cloudcallcenter/web-workbench-sdk/2.16.0/main.min.css",),
    ),
    "v3": SdkAssets(
        scripts=(f"{_CDN}/cloudcallcenter/web-workbench-sdk/3.6.1/ui.min.js",),
        styles=(f"{_CDN}/cloudcallcenter/web-workbench-sdk/3.6.1/ui.min.css",),
    ),
}
# softphone.sdk: auto picks the SDK of the configured CCC generation.
SDK_FOR_VERSION: dict[str, str] = {CLASSIC_VERSION: "v1", CCC2_VERSION: "v3"}
# The SDK generations each CCC generation can serve (check-config refuses the others).
SDKS_OF_VERSION: dict[str, tuple[str, ...]] = {
    CLASSIC_VERSION: ("v1",),
    CCC2_VERSION: ("v2", "v3"),
}
DEFAULT_SDK_SCRIPTS = SDK_ASSETS["v1"].scripts  # the classic defaults, as before
DEFAULT_SDK_STYLES = SDK_ASSETS["v1"].styles


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
    # Send the client's Host (the gateway's public host) to the CRM instead of the CRM's own
    # host:port: CRMs that check Origin/Referer against Host for CSRF (Django, Rails, ...)
    # then see one origin (docs/crm/README.md).
    preserve_host: bool = False
    # Rewrite absolute links to `url`'s origin in HTML pages to the gateway's public origin.
    rewrite_body_urls: bool = False

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
    # The gateway's public origin and host[:port], from redirect_uri: the one place they are
    # worked out (same-origin checks, the HTTP redirect, the proxy's Location rewrite).
    public_origin: str = field(init=False)
    public_host: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_origin", str(self.redirect_uri.origin()))
        object.__setattr__(self, "public_host", self.redirect_uri.host_port_subcomponent or "")


@dataclass(frozen=True)
class CccConfig:
    instance_id: str
    region: str = "cn-shanghai"
    endpoint: URL = URL("https://ccc.cn-shanghai.aliyuncs.com/")  # noqa: RUF009 - immutable
    version: str = CCC2_VERSION  # "2020-07-01" CCC 2.0 | "2017-07-05" classic
    auth: str = "auto"  # auto | bearer | sts
    # None: the generation's workbench list (pop.actions.default_actions); "*": every action.
    allowed_actions: frozenset[str] | Literal["*"] | None = None
    # None: the generation's way: classic answers reshaped for the 1.x SDK, 2.0 answers
    # passed through as POP sent them (the 2.x/3.x SDK reads POP's own JSON).
    reshape: bool | None = None
    timeout: float = 10.0
    max_request_size: int = 64 * 1024
    max_response_size: int = 2 * MiB
    # The allow-list as the API and the metrics use it, built once from allowed_actions
    # (load.py has checked every name, reporting bad ones by key path).
    actions: ActionPolicy = field(init=False)
    # `reshape` resolved for the generation: True when answers are reshaped for the SDK.
    reshape_answers: bool = field(init=False)

    def __post_init__(self) -> None:
        allowed = self.allowed_actions
        if allowed is None:
            allowed = default_actions(self.version)
        policy = ActionPolicy(None if allowed == "*" else allowed)
        object.__setattr__(self, "actions", policy)
        reshape = self.reshape if self.reshape is not None else not self.is_v2
        object.__setattr__(self, "reshape_answers", reshape)

    @property
    def is_v2(self) -> bool:
        """True for CCC 2.0 (API 2020-07-01), False for the classic API 2017-07-05."""
        return self.version == CCC2_VERSION


@dataclass(frozen=True)
class SessionConfig:
    keys: tuple[Secret, ...]
    max_age: float = 30 * DAY  # absolute lifetime of an Alibaba sign-in in the gateway
    idle_timeout: float = 7 * DAY  # sign-in forgotten after this long unused
    refresh_leeway: float = 60.0  # refresh this long before the access token expires
    # How the sign-in is bound to the CRM user who made it: "whoami" asks the CRM
    # (upstream.whoami_path), "cookie" compares a keyed hash of the CRM's session cookie
    # (crm_session_cookie), "off" binds nothing. YAML true/false mean whoami/off.
    crm_binding: str = "whoami"
    whoami_cache_ttl: float = 5.0
    login_state_ttl: float = 600.0  # how long a started sign-in may take
    # redis[s]://[:password@]host:port/db keeps sign-ins in Redis, shared by replicas; None
    # keeps them in the cookie. A Secret: the URL may carry the password.
    store: Secret | None = None
    crm_session_cookie: str | None = None  # the CRM's session cookie, for crm_binding: cookie


@dataclass(frozen=True)
class ClickToCallConfig:
    selectors: tuple[str, ...] = ()
    detect: bool = False
    pattern: str | None = None


@dataclass(frozen=True)
class SoftphoneConfig:
    inject: bool = True
    screen_pop_url: str = "/customer/phoneNumber/{caller}"
    screen_pop_target: str = "same-tab"  # same-tab | new-tab
    # The browser SDK generation, resolved by load.py (`auto` follows ccc.version): v1 the
    # classic workbench-sdk, v2 web-workbench-sdk 2.x, v3 its 3.x UI build.
    sdk: str = "v3"
    # The SDK's files; load.py defaults them to SDK_ASSETS[sdk].
    sdk_scripts: tuple[str, ...] = SDK_ASSETS["v3"].scripts
    sdk_styles: tuple[str, ...] = SDK_ASSETS["v3"].styles
    ajax_method: str = "post"
    # Click-to-call from page content waits for the agent's Call in the softphone: CRM content
    # (an invisible element over the page) could otherwise place a paid call with one click.
    confirm_dial: bool = True
    # Constructor options (JSON values) merged over the page's own, for what Alibaba's public
    # documentation leaves open about the 2.x/3.x SDKs (docs/softphone.md, section 8).
    sdk_options: Mapping[str, Any] = field(default_factory=dict)
    # Sources added to the softphone page's CSP, by directive (softphone/views.py).
    csp_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # An incoming call in a background tab shows a desktop notification (permission asked once).
    notifications: bool = True
    # The after-call form (static/call_log.js): its outcomes, and how long it keeps the agent
    # in after-call work before ready again (0: until saved).
    after_call_outcomes: tuple[str, ...] = ("resolved", "callback", "no_answer", "other")
    after_call_seconds: float = 120.0

    # Click-to-call where CRMs put numbers (static/numbers.js): elements whose text is a number
    # (inputs among them get a Call button), and the opt-in detector of numbers in page text
    # with its pattern (None: numbers.js's own, Chinese mobiles, landlines and E.164).
    click_to_call: ClickToCallConfig = field(default_factory=ClickToCallConfig)


@dataclass(frozen=True)
class UiConfig:
    # auto: the browser's language (Accept-Language, navigator.language); zh* gives Chinese.
    language: str = "auto"  # auto | zh-CN | en


@dataclass(frozen=True)
class CrmEventsConfig:
    """Call events posted to the CRM (docs/crm/call-events.md); off while `url` is None."""

    url: str | None = None  # a path on the CRM (joined to upstream.url) or an absolute URL
    secret: Secret | None = None  # HMAC-SHA256 key of the X-CCC-Signature header
    timeout: float = 10.0  # one delivery attempt
    max_attempts: int = 6  # attempts per event before it is counted as failed
    queue_size: int = 1000  # events waiting per worker process; the oldest go when full


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
    ui: UiConfig = field(default_factory=UiConfig)
    crm_events: CrmEventsConfig = field(default_factory=CrmEventsConfig)

    @property
    def crm_binding(self) -> str:
        """The binding in force: "whoami", "cookie" or "off" (whoami without a whoami_path
        is off: there is nobody to ask)."""
        mode = self.session.crm_binding
        if mode == "whoami" and self.upstream.whoami_path is None:
            return "off"
        return mode
