"""Configuration loading: typed values, env expansion, and every problem reported by key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from yarl import URL

from ccc_gateway.ccc.pop.actions import CCC2_ACTIONS, WORKBENCH_ACTIONS
from ccc_gateway.config.load import CONTROL_CONNECTIONS, ConfigError, load_config, parse_config
from ccc_gateway.config.model import SDK_ASSETS, ClickToCallConfig
from ccc_gateway.config.values import Secret, expand_env, parse_duration, parse_size

ROOT = Path(__file__).resolve().parent.parent
KEY = Fernet.generate_key().decode()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    return cert, key


def minimal(tls_files: tuple[Path, Path], extra: str = "") -> str:
    cert, key = tls_files
    return f"""
tls: {{cert: "{cert}", key: "{key}"}}
aliyun:
  client_id: "123"
  client_secret: "${{SECRET}}"
  redirect_uri: https://crm.example.com/aliyun/auth/callback
ccc: {{instance_id: inst-1}}
session: {{keys: ["{KEY}"]}}
{extra}"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env if env is not None else {"SECRET": "s"})
    return info.value.problems


def test_minimal_config_gets_documented_defaults(tls_files):
    """A minimal file fills every other key with its default."""
    config = parse_config(minimal(tls_files), {"SECRET": "s3cret"})
    assert config.listen.port == 8443
    assert config.upstream.url == URL("http://127.0.0.1:8080")
    assert config.upstream.whoami_path == "/api/me"
    assert config.aliyun.endpoints.token_url == "https://oauth.aliyun.com/v1/token"
    assert config.aliyun.client_secret.reveal() == "s3cret"
    assert config.ccc.endpoint == URL("https://ccc.cn-shanghai.aliyuncs.com/")
    assert config.session.max_age == 30 * 86400
    # CCC 2.0 is the default generation, with its allow-list, pass-through and SDK.
    assert config.ccc.version == "2020-07-01" and config.ccc.is_v2
    assert config.ccc.allowed_actions is None
    assert config.ccc.actions.allowed == CCC2_ACTIONS
    assert config.ccc.reshape is None and config.ccc.reshape_answers is False
    assert config.softphone.sdk == "v3"
    assert config.softphone.sdk_scripts == SDK_ASSETS["v3"].scripts


def test_every_problem_is_reported_at_once_by_key_path(tls_files):
    """Several mistakes in one file all appear in one error, each with its key path."""
    text = minimal(
        tls_files,
        """
listen: {port: 70000, workers: 0, trusted_proxies: [not-an-ip]}
upstream: {url: "ftp://x", read_timeout: soon, max_body_size: lots, colour: blue}
log: {format: xml}
""",
    ).replace("inst-1", "")
    found = problems_of(text)
    expected = [
        "listen.port: expected a port from 1 to 65535, not 70000",
        "listen.workers: expected a number of at least 1, not 0",
        "listen.trusted_proxies: item 1: expected an IP address or CIDR network, not 'not-an-ip'",
        "upstream.url: expected an http(s) URL with a host, not 'ftp://x'",
        "upstream.read_timeout: expected a duration like 90s, 15m, 30d, not 'soon'",
        "upstream.max_body_size: expected a size like 64KiB or 10MB, not 'lots'",
        "upstream.colour: unknown key (a typo?)",
        "log.format: expected one of text, json, not 'xml'",
        "ccc.instance_id: required",
    ]
    for line in expected:
        assert line in found
    assert len(found) == len(expected)


def test_missing_files_are_reported(tmp_path):
    """A certificate path that does not exist is named in the problem."""
    found = problems_of(minimal((tmp_path / "nope.crt", tmp_path / "nope.key")))
    assert f"tls.cert: file not found: {tmp_path / 'nope.crt'}" in found
    assert f"tls.key: file not found: {tmp_path / 'nope.key'}" in found


def test_unset_environment_variable_is_a_problem(tls_files):
    """`${NAME}` without a default must be set."""
    expected = ["aliyun.client_secret: environment variable SECRET is not set"]
    assert problems_of(minimal(tls_files), env={}) == expected
    assert problems_of(minimal(tls_files), env={"SECRET": ""}) == expected


def test_environment_defaults_and_expansion():
    """`${NAME:-default}` falls back; set variables win; unset ones are listed."""
    assert expand_env("a${X}b${Y:-dflt}c${Z}", {"X": "1"}) == ("a1bdfltc", ["Z"])
    assert expand_env("${Y:-dflt}", {"Y": "set"}) == ("set", [])
    assert expand_env("${Y:-dflt}", {"Y": ""}) == ("dflt", [])


def test_unknown_top_level_section_and_wrong_shapes(tls_files):
    """A typo in a section name and a section that is not a mapping are both caught."""
    found = problems_of(minimal(tls_files, "sesion: {}\nsoftphone: [1, 2]\n"))
    assert "sesion: unknown key (a typo?)" in found
    assert "softphone: expected a mapping, not a list" in found


def test_not_yaml_and_not_a_mapping():
    """Broken YAML and a top level that is not a mapping give one clear problem."""
    assert problems_of("a: [b")[0].startswith("not valid YAML")
    assert problems_of("- 1\n- 2\n")[0] == "(top level): expected a mapping, not a list"


def test_session_keys_must_be_keygen_keys(tls_files):
    """A session key that is not 32 url-safe base64 bytes is rejected."""
    found = problems_of(minimal(tls_files).replace(KEY, "short"))
    assert found == ["session.keys: item 1: not a session key: make one with `ccc-gateway keygen`"]
    found = problems_of(minimal(tls_files).replace(f'["{KEY}"]', "[]"))
    assert found == ["session.keys: at least one key is needed"]


def test_allowed_actions_star_and_list(tls_files):
    """`"*"` alone allows everything; a list is taken literally; `*` inside a list is an error."""
    star = parse_config(
        minimal(tls_files, 'ccc: {instance_id: i, allowed_actions: "*"}').replace(
            "ccc: {instance_id: inst-1}\n", ""
        ),
        {"SECRET": "s"},
    )
    assert star.ccc.allowed_actions == "*" and star.ccc.actions.allowed is None
    listed = parse_config(
        minimal(tls_files).replace(
            "{instance_id: inst-1}", "{instance_id: i, allowed_actions: [GetUser]}"
        ),
        {"SECRET": "s"},
    )
    assert listed.ccc.allowed_actions == frozenset({"GetUser"})
    found = problems_of(
        minimal(tls_files).replace(
            "{instance_id: inst-1}", '{instance_id: i, allowed_actions: ["*", GetUser]}'
        )
    )
    assert found == ['ccc.allowed_actions: write "*" alone (not in a list) to allow every action']


def test_allowed_actions_are_parsed_once_into_the_policy(tls_files):
    """config.ccc.actions is the ActionPolicy the API and metrics use; a bad name is a config
    problem with its key path (check-config says so, not the first start)."""
    listed = parse_config(
        minimal(tls_files).replace(
            "{instance_id: inst-1}", "{instance_id: i, allowed_actions: [GetUser]}"
        ),
        {"SECRET": "s"},
    )
    assert listed.ccc.actions.allowed == frozenset({"GetUser"})
    assert listed.ccc.actions.allows("GetUser") and not listed.ccc.actions.allows("MakeCall")
    found = problems_of(
        minimal(tls_files).replace(
            "{instance_id: inst-1}", '{instance_id: i, allowed_actions: [GetUser, "get user"]}'
        )
    )
    assert found == ["ccc.allowed_actions: not action names: 'get user'"]


def test_public_origin_and_host_come_from_the_redirect_uri(tls_files):
    config = parse_config(minimal(tls_files), {"SECRET": "s"})
    uri = config.aliyun.redirect_uri
    assert config.aliyun.public_origin == str(uri.origin())
    assert config.aliyun.public_host == uri.host_port_subcomponent


def test_whoami_null_turns_binding_lookup_off(tls_files):
    """An explicit null whoami_path means the CRM has no whoami endpoint."""
    config = parse_config(minimal(tls_files, "upstream: {whoami_path: null}"), {"SECRET": "s"})
    assert config.upstream.whoami_path is None


def test_redirect_uri_must_be_the_callback_route(tls_files):
    """The registered redirect URI must point at the gateway's callback route."""
    found = problems_of(minimal(tls_files).replace("/aliyun/auth/callback", "/cb"))
    assert found == ["aliyun.redirect_uri: its path must be /aliyun/auth/callback"]


def test_site_international_changes_default_endpoints(tls_files):
    """`site: international` picks the alibabacloud.com endpoints; overrides still win."""
    text = minimal(tls_files).replace(
        "aliyun:\n", "aliyun:\n  site: international\n  revoke_url: http://127.0.0.1:1/v1/revoke\n"
    )
    config = parse_config(text, {"SECRET": "s"})
    assert config.aliyun.endpoints.token_url == "https://oauth.alibabacloud.com/v1/token"
    assert config.aliyun.endpoints.revoke_url == "http://127.0.0.1:1/v1/revoke"


def test_durations_and_sizes():
    """Durations and sizes accept units and plain numbers, and reject nonsense."""
    assert parse_duration("90s") == 90
    assert parse_duration("15m") == 900
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12
    assert parse_size("64KiB") == 65536
    assert parse_size("10MB") == 10_000_000
    for bad in ("-1s", "1w", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError):
        parse_size("1TB")


def test_secrets_are_masked_in_reprs(tls_files):
    """Neither the config's repr nor a Secret's str shows the secret or the session key."""
    config = parse_config(minimal(tls_files), {"SECRET": "hunter2-very-secret"})
    text = repr(config) + str(config.aliyun.client_secret)
    assert "hunter2-very-secret" not in text
    assert KEY not in text
    assert Secret("x") == Secret("x")


def test_load_config_missing_file(tmp_path):
    """A missing configuration file is one problem naming the file."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert info.value.problems == ["file not found"]
    assert str(tmp_path / "absent.yaml") in str(info.value)


def test_root_gateway_yaml_is_valid_with_its_environment(tls_files, monkeypatch):
    """The documented example at the repository root loads with exactly its four variables."""
    cert, key = tls_files
    env = {
        "ALIYUN_CLIENT_ID": "1",
        "ALIYUN_CLIENT_SECRET": "s",
        "SESSION_KEY": KEY,
        "CCC_INSTANCE_ID": "i",
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
    }
    config = load_config(ROOT / "gateway.yaml", env)
    assert config.aliyun.client_id == "1"
    assert config.session.keys == (Secret(KEY),)


def test_unset_variable_in_whoami_path_is_reported_once(tls_files):
    """A `${NAME}` in upstream.whoami_path that is unset is one problem, not two."""
    found = problems_of(minimal(tls_files, "upstream: {whoami_path: '${WHOAMI}'}"))
    assert found == ["upstream.whoami_path: environment variable WHOAMI is not set"]


def test_crm_connection_budgets_must_add_up(tls_files):
    """Pages, websockets and the whoami/readiness reserve share upstream.max_connections."""
    text = minimal(tls_files, "upstream: {max_connections: 30, max_websockets: 10}")
    upstream = parse_config(text, {"SECRET": "s"}).upstream
    assert upstream.page_connections + upstream.max_websockets + CONTROL_CONNECTIONS == 30
    problems = problems_of(
        minimal(tls_files, "upstream: {max_connections: 14, max_websockets: 10}")
    )
    assert [p.split(":")[0] for p in problems] == ["upstream.max_connections"]
    bad = (
        "listen: {request_head_timeout: 0}\n"
        "upstream: {max_websockets: -1, min_upload_rate_window: 0}"
    )
    assert sorted(p.split(":")[0] for p in problems_of(minimal(tls_files, bad))) == [
        "listen.request_head_timeout",
        "upstream.max_websockets",
        "upstream.min_upload_rate_window",
    ]


def with_ccc(tls_files: tuple[Path, Path], ccc: str, softphone: str = "") -> str:
    """The minimal file with its ccc section replaced, and a softphone section."""
    text = minimal(tls_files, f"softphone: {{{softphone}}}" if softphone else "")
    return text.replace("{instance_id: inst-1}", f"{{instance_id: inst-1, {ccc}}}")


def test_classic_config_needs_only_its_version(tls_files):
    """`version: "2017-07-05"` alone brings back every classic default: the 1.x workbench's
    allow-list, reshaped answers, the v1 SDK and its files; quoted or not (a YAML date)."""
    for version in ('"2017-07-05"', "2017-07-05"):
        config = parse_config(with_ccc(tls_files, f"version: {version}"), {"SECRET": "s"})
        assert config.ccc.version == "2017-07-05" and not config.ccc.is_v2
        assert config.ccc.actions.allowed == WORKBENCH_ACTIONS
        assert config.ccc.reshape_answers is True
        assert config.softphone.sdk == "v1"
        assert config.softphone.sdk_scripts == SDK_ASSETS["v1"].scripts
        assert config.softphone.sdk_styles == SDK_ASSETS["v1"].styles


def test_ccc_version_accepts_only_the_two_generations(tls_files):
    """Any other version is a problem at ccc.version naming both accepted values."""
    found = problems_of(with_ccc(tls_files, 'version: "2020-05-27"'))
    assert len(found) == 1 and found[0].startswith('ccc.version: expected "2020-07-01"')
    assert '"2017-07-05"' in found[0]


def test_generation_defaults_are_overridable(tls_files):
    """reshape and allowed_actions set explicitly win over the generation's defaults."""
    config = parse_config(
        with_ccc(tls_files, "version: 2020-07-01, reshape: true, allowed_actions: [MakeCall]"),
        {"SECRET": "s"},
    )
    assert config.ccc.reshape_answers is True
    assert config.ccc.actions.allowed == frozenset({"MakeCall"})
    classic = parse_config(
        with_ccc(tls_files, "version: 2017-07-05, reshape: false"), {"SECRET": "s"}
    )
    assert classic.ccc.reshape_answers is False


@pytest.mark.parametrize(
    ("version", "sdk", "resolved"),
    [
        ("2020-07-01", "auto", "v3"),
        ("2020-07-01", "v2", "v2"),
        ("2020-07-01", "v3", "v3"),
        ("2017-07-05", "auto", "v1"),
        ("2017-07-05", "v1", "v1"),
    ],
)
def test_softphone_sdk_resolves_with_its_assets(tls_files, version, sdk, resolved):
    """softphone.sdk is resolved at load time, and its files default to that SDK's."""
    config = parse_config(
        with_ccc(tls_files, f"version: {version}", f"sdk: {sdk}"), {"SECRET": "s"}
    )
    assert config.softphone.sdk == resolved
    assert config.softphone.sdk_scripts == SDK_ASSETS[resolved].scripts
    assert config.softphone.sdk_styles == SDK_ASSETS[resolved].styles


def test_softphone_sdk_files_are_overridable(tls_files):
    """sdk_scripts and sdk_styles set explicitly replace the SDK's default files."""
    config = parse_config(
        with_ccc(tls_files, "version: 2020-07-01", "sdk: v2, sdk_scripts: [/a.js], sdk_styles: []"),
        {"SECRET": "s"},
    )
    assert config.softphone.sdk == "v2"
    assert config.softphone.sdk_scripts == ("/a.js",) and config.softphone.sdk_styles == ()


@pytest.mark.parametrize(
    ("version", "sdk", "fix"),
    [
        (
            "2020-07-01",
            "v1",
            'set softphone.sdk to auto or v2 or v3, or ccc.version to "2017-07-05"',
        ),
        ("2017-07-05", "v2", 'set softphone.sdk to auto or v1, or ccc.version to "2020-07-01"'),
        ("2017-07-05", "v3", 'set softphone.sdk to auto or v1, or ccc.version to "2020-07-01"'),
    ],
)
def test_check_config_rejects_an_sdk_of_the_other_generation(tls_files, version, sdk, fix):
    """An SDK that cannot work with the configured generation is a problem saying what to
    change."""
    found = problems_of(with_ccc(tls_files, f"version: {version}", f"sdk: {sdk}"))
    assert found == [
        f'softphone.sdk: {sdk} does not work with ccc.version "{version}": {fix} if the '
        "instance is of that generation"
    ]


def test_softphone_sdk_rejects_unknown_values(tls_files):
    """softphone.sdk takes auto, v1, v2 or v3 only."""
    found = problems_of(with_ccc(tls_files, "version: 2020-07-01", "sdk: v4"))
    assert found == ["softphone.sdk: expected one of auto, v1, v2, v3, not 'v4'"]


def test_a_classic_instance_id_with_2_0_says_to_set_the_version(tls_files):
    """A UUID instance id (classic) under the 2.0 default is a problem naming the fix."""
    uuid = "9cfad875-6260-4a53-ab6e-b13e3fb31f7d"
    text = minimal(tls_files).replace("{instance_id: inst-1}", f"{{instance_id: {uuid}}}")
    (found,) = problems_of(text)
    assert found.startswith(f"ccc.version: the instance id {uuid} is a classic instance's")
    assert 'set ccc.version: "2017-07-05"' in found
    classic = text.replace(
        f"{{instance_id: {uuid}}}", f"{{instance_id: {uuid}, version: 2017-07-05}}"
    )
    assert parse_config(classic, {"SECRET": "s"}).ccc.version == "2017-07-05"


# ---------------------------------------------------------------- real CRMs (issue 17)


def _cfg(tls_files: tuple[Path, Path], extra: str):
    return parse_config(minimal(tls_files, extra), {"SECRET": "s"})


@pytest.mark.parametrize(
    ("value", "mode"),
    [("true", "whoami"), ("false", "off"), ("whoami", "whoami"), ("off", "off")],
)
def test_crm_binding_modes_and_old_booleans(tls_files, value: str, mode: str):
    """crm_binding takes whoami | cookie | off; the booleans of older files still work."""
    assert _cfg(tls_files, "upstream: {}\n").session.crm_binding == "whoami"
    text = minimal(tls_files).replace("session: {", f"session: {{crm_binding: {value}, ")
    assert parse_config(text, {"SECRET": "s"}).crm_binding == mode


def test_cookie_binding_needs_the_cookie_name(tls_files):
    """crm_binding: cookie without crm_session_cookie, or with a bad name, is reported."""
    text = minimal(tls_files).replace("session: {", "session: {crm_binding: cookie, ")
    assert any("session.crm_session_cookie" in p for p in problems_of(text))
    bad = text.replace("crm_binding: cookie, ", 'crm_binding: cookie, crm_session_cookie: "a b", ')
    assert any("session.crm_session_cookie: not a cookie name" in p for p in problems_of(bad))
    good = text.replace("crm_binding: cookie, ", "crm_binding: cookie, crm_session_cookie: sid, ")
    config = parse_config(good, {"SECRET": "s"})
    assert config.crm_binding == "cookie" and config.session.crm_session_cookie == "sid"


def test_whoami_binding_without_whoami_path_is_off(tls_files):
    """whoami with `upstream.whoami_path: null` has nobody to ask: the binding in force is off."""
    assert _cfg(tls_files, "upstream: {whoami_path: null}").crm_binding == "off"


def test_new_upstream_options_default_off(tls_files):
    """preserve_host and rewrite_body_urls are opt-in, and read as booleans."""
    config = _cfg(tls_files, "")
    assert not config.upstream.preserve_host and not config.upstream.rewrite_body_urls
    on = _cfg(tls_files, "upstream: {preserve_host: true, rewrite_body_urls: true}")
    assert on.upstream.preserve_host and on.upstream.rewrite_body_urls


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("http://crm.corp.net/aliyun/auth/callback", True),
        ("http://127.0.0.1:8443/aliyun/auth/callback", False),
        ("http://localhost:8443/aliyun/auth/callback", False),
        ("http://[::1]:8443/aliyun/auth/callback", False),
    ],
)
def test_plain_http_redirect_uri_is_refused_off_loopback(tls_files, uri: str, refused: bool):
    """An http redirect_uri would carry the authorization code in clear: loopback only."""
    text = minimal(tls_files).replace("https://crm.example.com/aliyun/auth/callback", uri)
    if refused:
        assert any(p.startswith("aliyun.redirect_uri: must be https") for p in problems_of(text))
    else:
        assert parse_config(text, {"SECRET": "s"}).aliyun.redirect_uri == URL(uri)


def _warnings(tls_files: tuple[Path, Path], extra: str = "", uri: str | None = None) -> list[str]:
    from ccc_gateway.config.load import config_warnings

    text = minimal(tls_files, extra)
    if uri is not None:
        text = text.replace("https://crm.example.com/aliyun/auth/callback", uri)
    return config_warnings(parse_config(text, {"SECRET": "s"}))


GOOD_URI = "https://127.0.0.1:8443/aliyun/auth/callback"


def test_a_sample_crm_setup_has_no_crm_warning(tls_files):
    """The sample CRM on its default address with whoami binding: nothing to warn about."""
    assert _warnings(tls_files, uri=GOOD_URI) == []


def test_binding_off_warns_what_it_costs(tls_files):
    """Binding off (by crm_binding or by no whoami_path) warns of the shared-PC consequence."""
    from ccc_gateway.config.load import config_warnings

    no_whoami = _warnings(tls_files, "upstream: {whoami_path: null}", GOOD_URI)
    assert any("inherits the agent's phone line" in w for w in no_whoami)
    off = minimal(tls_files).replace("session: {", "session: {crm_binding: false, ")
    off = off.replace("https://crm.example.com/aliyun/auth/callback", GOOD_URI)
    found = config_warnings(parse_config(off, {"SECRET": "s"}))
    assert any("crm_binding" in w and "inherits the agent's phone line" in w for w in found)


def test_sample_screen_pop_with_another_crm_warns(tls_files):
    """screen_pop_url left at the sample CRM's path in front of another CRM (another login
    path or binding, or a CRM on another host) warns; the sample CRM on any port does not."""
    other = "upstream: {url: 'http://localhost:9000', login_path: /admin/login/}"
    found = _warnings(tls_files, other, GOOD_URI)
    assert any(w.startswith("softphone.screen_pop_url is still the sample CRM's") for w in found)
    remote = _warnings(tls_files, "upstream: {url: 'http://10.1.2.3:8000'}", GOOD_URI)
    assert any("screen_pop_url" in w for w in remote)
    sample = _warnings(tls_files, "upstream: {url: 'http://127.0.0.1:18080'}", GOOD_URI)
    assert not any("screen_pop_url" in w for w in sample)
    adapted = other + "\nsoftphone: {screen_pop_url: '/s?q={caller}'}"
    assert not any("screen_pop_url" in w for w in _warnings(tls_files, adapted, GOOD_URI))


def test_placeholder_and_unresolvable_hosts_warn(tls_files):
    """example.com in redirect_uri, and a CRM host that does not resolve, are warned about."""
    found = _warnings(tls_files, "upstream: {url: 'http://crm-host.invalid:8080'}")
    assert any(w.startswith("aliyun.redirect_uri names a placeholder host") for w in found)
    assert any(w.startswith("upstream.url names a placeholder host") for w in found)
    unresolved = _warnings(tls_files, "upstream: {url: 'http://no-such-crm-host:8080'}", GOOD_URI)
    assert any("no-such-crm-host does not resolve" in w for w in unresolved)
    assert not any("placeholder" in w for w in _warnings(tls_files, uri=GOOD_URI))


def test_click_to_call_keys(tls_files):
    """softphone.click_to_call: selectors, detect and a pattern; all off/empty by default."""
    assert parse_config(minimal(tls_files), {"SECRET": "s"}).softphone.click_to_call == (
        ClickToCallConfig()
    )
    text = minimal(
        tls_files,
        "softphone:\n  click_to_call:\n    selectors: ['td.phone', '[data-field=mobile]']\n"
        "    detect: true\n    pattern: '1[3-9]\\d{9}'",
    )
    clicks = parse_config(text, {"SECRET": "s"}).softphone.click_to_call
    assert clicks == ClickToCallConfig(("td.phone", "[data-field=mobile]"), True, r"1[3-9]\d{9}")


def test_click_to_call_problems_all_at_once(tls_files):
    """A style block for a selector, a broken or empty-matching pattern and a typo: each named."""
    text = minimal(
        tls_files,
        "softphone:\n  click_to_call:\n    selectors: ['td.phone', 'td {color: red}']\n"
        "    detect: maybe\n    pattern: '(\\d+'\n    detector: true",
    )
    found = problems_of(text)
    assert [p.split(":")[0] for p in found] == [
        "softphone.click_to_call.selectors",
        "softphone.click_to_call.detect",
        "softphone.click_to_call.pattern",
        "softphone.click_to_call.detector",
    ]
    empty = minimal(tls_files, "softphone: {click_to_call: {pattern: '\\d*'}}")
    assert problems_of(empty)[0].startswith("softphone.click_to_call.pattern: must be")


def test_screen_pop_takes_the_normalised_caller_variables(tls_files):
    """{caller_digits}, {caller_national} and {caller_e164} are template variables too."""
    template = "/s?q={caller_national}&e={caller_e164}&d={caller_digits}"
    text = minimal(tls_files, f"softphone: {{screen_pop_url: '{template}'}}")
    assert parse_config(text, {"SECRET": "s"}).softphone.screen_pop_url == template
    (found,) = problems_of(minimal(tls_files, "softphone: {screen_pop_url: '/s?q={number}'}"))
    assert "unknown variable {number}" in found and "{caller_e164}" in found
