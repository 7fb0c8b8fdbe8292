"""Token endpoint response parsing and AliyunSTS credential decoding."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ccc_gateway.auth.oauth.errors import OAuthProtocolError
from ccc_gateway.auth.oauth.tokens import (
    DEFAULT_EXPIRES_IN,
    StsCredentials,
    TokenSet,
    parse_token_response,
    sts_credentials,
)

NOW = 1_700_000_000.0
STS = {"AccessKeyId": "STS.id-1", "AccessKeySecret": "sts-secret-1", "SecurityToken": "sec-tok-1"}


def body(**fields: Any) -> dict[str, Any]:
    """A minimal valid token response with overrides."""
    return {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, **fields}


def sts_token(payload: object, *, padded: bool = False, urlsafe: bool = True) -> TokenSet:
    """A TokenSet whose access token encodes ``payload`` as Alibaba does."""
    raw = json.dumps(payload).encode()
    text = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return TokenSet(text if padded else text.rstrip("="), "AliyunSTS", NOW)


@pytest.mark.parametrize(
    ("expires_in", "seconds"),
    [(3600, 3600.0), (1799.5, 1799.5), ("3599", 3599.0), (" 900 ", 900.0), ("120.5", 120.5)],
)
def test_expires_in_number_or_numeric_string(expires_in: object, seconds: float) -> None:
    """expires_in is accepted as int, float or numeric string."""
    assert parse_token_response(body(expires_in=expires_in), now=NOW).expires_at == NOW + seconds


@pytest.mark.parametrize("garbage", ["abc", "", -1, "-5", "nan", "inf", True, [], {}, 1e400])
def test_garbage_expires_in_is_a_protocol_error(garbage: object) -> None:
    """Negative, non-finite, boolean or non-numeric expires_in raises OAuthProtocolError."""
    with pytest.raises(OAuthProtocolError, match="expires_in"):
        parse_token_response(body(expires_in=garbage), now=NOW)


def test_missing_expires_in_uses_the_conservative_default() -> None:
    """Without expires_in the token is assumed to live the shortest configurable time."""
    tokens = parse_token_response({"access_token": "at", "token_type": "Bearer"}, now=NOW)
    assert DEFAULT_EXPIRES_IN == 900.0
    assert tokens.expires_at == NOW + DEFAULT_EXPIRES_IN


def test_all_fields_are_kept() -> None:
    """refresh_token, id_token and scope are carried into the TokenSet."""
    tokens = parse_token_response(
        body(refresh_token="rt-1", id_token="a.b.c", scope="openid aliuid"), now=NOW
    )
    assert tokens == TokenSet("at-1", "Bearer", NOW + 3600, "rt-1", "a.b.c", "openid aliuid")


def test_previous_refresh_token_kept_when_none_returned() -> None:
    """A refresh reply without refresh_token keeps the previous one."""
    tokens = parse_token_response(body(), now=NOW, previous_refresh_token="rt-old")
    assert tokens.refresh_token == "rt-old"


def test_rotated_refresh_token_preferred() -> None:
    """A refresh reply with a new refresh_token replaces the previous one."""
    tokens = parse_token_response(
        body(refresh_token="rt-new"), now=NOW, previous_refresh_token="rt-old"
    )
    assert tokens.refresh_token == "rt-new"


def test_empty_refresh_token_counts_as_absent() -> None:
    """An empty refresh_token string does not erase the previous one."""
    tokens = parse_token_response(body(refresh_token=""), now=NOW, previous_refresh_token="rt")
    assert tokens.refresh_token == "rt"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("bearer", "Bearer"), ("BEARER", "Bearer"), ("aliyunsts", "AliyunSTS"), (None, "Bearer")],
)
def test_token_type_is_case_insensitive(given: str | None, canonical: str) -> None:
    """token_type is canonicalised case-insensitively; absent means Bearer."""
    assert parse_token_response(body(token_type=given), now=NOW).token_type == canonical


@pytest.mark.parametrize(
    "bad",
    [{}, {"access_token": ""}, {"access_token": 5}, body(refresh_token=7), body(token_type=1)],
)
def test_malformed_bodies_are_protocol_errors(bad: dict[str, Any]) -> None:
    """Missing access_token or wrongly typed fields raise OAuthProtocolError."""
    with pytest.raises(OAuthProtocolError):
        parse_token_response(bad, now=NOW)


def test_non_mapping_body_is_a_protocol_error() -> None:
    """A JSON list in place of the object raises OAuthProtocolError."""
    with pytest.raises(OAuthProtocolError, match="not a JSON object"):
        parse_token_response([1, 2], now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("padded", [False, True])
def test_sts_credentials_decoded_with_or_without_padding(padded: bool) -> None:
    """An AliyunSTS token decodes to its three credentials, padding optional."""
    creds = sts_credentials(sts_token(STS, padded=padded))
    assert creds == StsCredentials("STS.id-1", "sts-secret-1", "sec-tok-1")


def test_sts_credentials_tolerate_the_standard_alphabet() -> None:
    """Standard base64 (+ and /) decodes too, since the alphabet is undocumented."""
    payload = {**STS, "AccessKeySecret": ">>>???~~~"}
    token = sts_token(payload, urlsafe=False)
    assert set("+/") & set(token.access_token)  # the case under test really occurs
    creds = sts_credentials(token)
    assert creds is not None and creds.access_key_secret == ">>>???~~~"


def test_sts_credentials_none_for_bearer() -> None:
    """A Bearer token carries no STS credentials."""
    assert sts_credentials(TokenSet("opaque", "Bearer", NOW)) is None


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (TokenSet("!!not base64!!", "AliyunSTS", NOW), "not base64"),
        (TokenSet("bm90IGpzb24", "AliyunSTS", NOW), "base64 JSON"),  # "not json"
        (sts_token([1, 2]), "JSON object"),
        (sts_token({"AccessKeyId": "a", "AccessKeySecret": "b"}), "SecurityToken"),
        (sts_token({**STS, "AccessKeyId": ""}), "AccessKeyId"),
        (TokenSet("/w", "AliyunSTS", NOW), "base64 JSON"),  # a byte that is not UTF-8
    ],
)
def test_invalid_sts_tokens_are_protocol_errors(token: TokenSet, reason: str) -> None:
    """Undecodable AliyunSTS tokens raise OAuthProtocolError naming the problem."""
    with pytest.raises(OAuthProtocolError, match=reason) as info:
        sts_credentials(token)
    assert token.access_token not in str(info.value)


def test_tokenset_repr_masks_every_token() -> None:
    """Neither repr() nor str() of a TokenSet shows a token."""
    tokens = TokenSet("at-SECRET", "Bearer", NOW, "rt-SECRET", "id-SECRET", "openid")
    for text in (repr(tokens), str(tokens), f"{tokens}"):
        assert "SECRET" not in text
        assert "openid" in text and "Bearer" in text


def test_sts_credentials_repr_masks_secret_and_token() -> None:
    """repr() of StsCredentials shows the key id only."""
    text = repr(StsCredentials("STS.id", "the-SECRET", "the-TOKEN"))
    assert "STS.id" in text
    assert "SECRET" not in text and "TOKEN" not in text


def test_expires_within_uses_leeway() -> None:
    """A token is due for refresh once now + leeway reaches expires_at."""
    tokens = TokenSet("at", "Bearer", NOW + 100)
    assert not tokens.expires_within(NOW, leeway=60)
    assert tokens.expires_within(NOW + 40, leeway=60)
    assert tokens.expires_within(NOW + 100)


def test_is_sts_follows_token_type() -> None:
    """is_sts is true only for the canonical AliyunSTS type."""
    assert parse_token_response(body(token_type="ALIYUNsts"), now=NOW).is_sts
    assert not parse_token_response(body(), now=NOW).is_sts
