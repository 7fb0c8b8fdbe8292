"""id_token (RS256 JWS) verification against a JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from ccc_gateway.auth.oauth.errors import IdTokenError, OAuthProtocolError, UnknownKeyId
from ccc_gateway.auth.oauth.oidc import Jwk, JwkSet, verify_id_token

ISSUER = "https://oauth.aliyun.com"
CLIENT_ID = "4071151845732613353"
NOW = 1_700_000_000.0
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(value: object) -> str:
    """A JSON value as a JWS segment."""
    return b64(json.dumps(value).encode())


def jwk(key: rsa.RSAPrivateKey, kid: str | None = "k1", **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key``."""
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    entry = {"kty": "RSA", "use": "sig", "alg": "RS256", "n": b64(n), "e": b64(b"\x01\x00\x01")}
    if kid is not None:
        entry["kid"] = kid
    return {**entry, **extra}


JWKS = {"keys": [jwk(KEY)]}


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid Alibaba-style claims with overrides."""
    base = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "2000123", "exp": NOW + 3600,
            "iat": NOW - 5, "nonce": "n-1", "upn": "agent1@ccc-demo.onaliyun.com"}  # fmt: skip
    return {**base, **overrides}


def sign(
    payload: object, key: rsa.RSAPrivateKey = KEY, header: dict[str, Any] | None = None
) -> str:
    """An RS256 compact JWS of ``payload``."""
    head = seg(header if header is not None else {"alg": "RS256", "kid": "k1", "typ": "JWT"})
    signing_input = f"{head}.{seg(payload)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def verify(token: str, jwks: Any = JWKS, *, nonce: str | None = "n-1", **kw: Any) -> dict[str, Any]:
    """verify_id_token with the test's issuer, audience and clock."""
    args = {"issuer": ISSUER, "audience": CLIENT_ID, "now": NOW, "nonce": nonce, **kw}
    return verify_id_token(token, jwks, **args)


def test_valid_token_returns_claims() -> None:
    """A correctly signed token with valid claims yields its claims."""
    assert verify(sign(claims())) == claims()


def test_parsed_jwk_set_is_accepted() -> None:
    """A pre-parsed JwkSet works the same as the raw JWKS document."""
    assert verify(sign(claims()), JwkSet.from_json(JWKS))["sub"] == "2000123"


def test_signature_by_another_key_is_rejected() -> None:
    """A token signed by a different key under the same kid fails."""
    with pytest.raises(IdTokenError, match="bad signature"):
        verify(sign(claims(), OTHER_KEY))


def test_tampered_claims_are_rejected() -> None:
    """Changing the claims after signing breaks the signature."""
    head, _, sig = sign(claims()).split(".")
    with pytest.raises(IdTokenError, match="bad signature"):
        verify(f"{head}.{seg(claims(sub='admin'))}.{sig}")


def test_unknown_kid_raises_unknown_key_id() -> None:
    """A kid absent from the JWKS raises the distinct UnknownKeyId."""
    token = sign(claims(), OTHER_KEY, {"alg": "RS256", "kid": "rotated"})
    with pytest.raises(UnknownKeyId) as info:
        verify(token)
    assert info.value.kid == "rotated"
    assert isinstance(info.value, IdTokenError)


def test_token_without_kid_uses_a_single_key_jwks() -> None:
    """With no kid in the header, a one-key JWKS is used."""
    assert verify(sign(claims(), header={"alg": "RS256"}))["sub"] == "2000123"


def test_token_without_kid_is_ambiguous_with_several_keys() -> None:
    """With no kid and several keys, UnknownKeyId is raised rather than guessing."""
    jwks = {"keys": [jwk(KEY), jwk(OTHER_KEY, "k2")]}
    with pytest.raises(UnknownKeyId):
        verify(sign(claims(), header={"alg": "RS256"}), jwks)


@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_alg_none_is_rejected(signature: str) -> None:
    """alg none is refused, with or without a signature segment."""
    token = f"{seg({'alg': 'none', 'kid': 'k1'})}.{seg(claims())}.{signature}"
    with pytest.raises(IdTokenError):
        verify(token)


def test_hs256_signed_with_the_public_key_is_rejected() -> None:
    """The HS256/RS256 key-confusion attack fails even though the kid matches."""
    public_pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = seg({"alg": "HS256", "kid": "k1"})
    body = seg(claims(sub="admin"))
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(IdTokenError, match="unsupported alg"):
        verify(f"{head}.{body}.{b64(mac)}")


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "rs256", None])
def test_other_algorithms_are_rejected(alg: str | None) -> None:
    """Any alg other than exactly RS256 is refused, even with a valid RS256 signature."""
    with pytest.raises(IdTokenError, match="unsupported alg"):
        verify(sign(claims(), header={"alg": alg, "kid": "k1"}))


def test_critical_header_is_rejected() -> None:
    """A crit header (extensions we do not implement) invalidates the token."""
    with pytest.raises(IdTokenError, match="critical"):
        verify(sign(claims(), header={"alg": "RS256", "kid": "k1", "crit": ["exp"]}))


def test_expired_token_is_rejected() -> None:
    """exp older than now minus leeway is refused."""
    with pytest.raises(IdTokenError, match="expired"):
        verify(sign(claims(exp=NOW - 61)))


def test_recently_expired_token_is_within_leeway() -> None:
    """exp inside the leeway window is still accepted (clock skew)."""
    assert verify(sign(claims(exp=NOW - 30)))["sub"] == "2000123"


def test_zero_leeway_is_strict() -> None:
    """With no leeway, exp equal to now is expired."""
    with pytest.raises(IdTokenError, match="expired"):
        verify(sign(claims(exp=NOW)), leeway=0)


def test_iat_in_the_future_is_rejected() -> None:
    """iat beyond now plus leeway is refused."""
    with pytest.raises(IdTokenError, match="future"):
        verify(sign(claims(iat=NOW + 120)))


def test_nbf_in_the_future_is_rejected() -> None:
    """nbf beyond now plus leeway is refused."""
    with pytest.raises(IdTokenError, match="not valid yet"):
        verify(sign(claims(nbf=NOW + 120)))


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"iss": "https://evil.example"}, "issuer"),
        ({"iss": ISSUER + "/"}, "issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": ["a", "b"]}, "audience"),
        ({"aud": None}, "aud"),
        ({"aud": [CLIENT_ID, 5]}, "aud"),
        ({"exp": "9999999999"}, "exp"),
        ({"exp": True}, "exp"),
        ({"iat": None}, "iat"),
        ({"sub": ""}, "subject"),
    ],
)
def test_bad_claims_are_rejected(override: dict[str, Any], reason: str) -> None:
    """Wrong or malformed iss, aud, exp, iat and sub are refused with a reason."""
    with pytest.raises(IdTokenError, match=reason):
        verify(sign(claims(**override)))


def test_audience_list_containing_us_is_accepted() -> None:
    """aud may be a list that contains the client id."""
    assert verify(sign(claims(aud=[CLIENT_ID])))["aud"] == [CLIENT_ID]


def test_audience_list_with_matching_azp_is_accepted() -> None:
    """Several audiences are fine when azp names us."""
    assert verify(sign(claims(aud=["other", CLIENT_ID], azp=CLIENT_ID)))["azp"] == CLIENT_ID


def test_audience_list_with_foreign_azp_is_rejected() -> None:
    """Several audiences with azp naming another client are refused."""
    with pytest.raises(IdTokenError, match="azp"):
        verify(sign(claims(aud=[CLIENT_ID, "other"], azp="other")))


def test_nonce_mismatch_is_rejected() -> None:
    """A nonce different from the one sent is refused."""
    with pytest.raises(IdTokenError, match="nonce mismatch"):
        verify(sign(claims(nonce="n-2")))


def test_nonce_missing_when_sent_is_rejected() -> None:
    """A token without nonce is refused when one was sent."""
    payload = claims()
    del payload["nonce"]
    with pytest.raises(IdTokenError, match="nonce missing"):
        verify(sign(payload))


def test_nonce_not_checked_when_none_was_sent() -> None:
    """When no nonce was sent, the token's nonce (or its absence) is not checked."""
    assert verify(sign(claims(nonce="anything")), nonce=None)["nonce"] == "anything"


def test_nonce_with_lone_surrogate_is_an_id_token_error() -> None:
    """A nonce claim that is not encodable text still ends as IdTokenError."""
    head = seg({"alg": "RS256", "kid": "k1"})
    body = b64(json.dumps(claims()).replace('"n-1"', '"\\ud800"').encode())
    sig = KEY.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(IdTokenError, match="nonce mismatch"):
        verify(f"{head}.{body}.{b64(sig)}")


GOOD_HEAD = seg({"alg": "RS256", "kid": "k1"})


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "3 segments"),
        ("a.b", "3 segments"),
        ("a.b.c.d", "3 segments"),
        (f"{GOOD_HEAD}..c2ln", "empty segment"),
        ("!!!.e30.c2ln", "header is not base64url"),
        (f"{b64(b'not json')}.e30.c2ln", "header is not JSON"),
        (f"{b64(bytes([0xFF, 0xFE]))}.e30.c2ln", "header is not JSON"),
        (f"{seg([1, 2])}.e30.c2ln", "header is not a JSON object"),
        (f"{GOOD_HEAD}.e30.%%%", "signature is not base64url"),
        (f"{seg({'alg': 'RS256', 'kid': 5})}.e30.c2ln", "kid"),
    ],
)
def test_malformed_tokens_raise_id_token_error(token: str, reason: str) -> None:
    """Malformed compact serialisations raise IdTokenError with a reason."""
    with pytest.raises(IdTokenError, match=reason):
        verify(token)


@pytest.mark.parametrize(("payload", "reason"), [([1, 2], "JSON object"), ("x", "JSON object")])
def test_signed_non_object_claims_are_rejected(payload: object, reason: str) -> None:
    """A validly signed payload that is not a JSON object is refused."""
    with pytest.raises(IdTokenError, match=reason):
        verify(sign(payload))


def test_non_string_token_is_an_id_token_error() -> None:
    """A non-string id_token (e.g. JSON null) raises IdTokenError."""
    with pytest.raises(IdTokenError, match="not a string"):
        verify(None)  # type: ignore[arg-type]


@given(st.text(alphabet=st.sampled_from("ab.=_-{}e30!\x00é"), max_size=40))
def test_arbitrary_input_only_ever_raises_id_token_error(token: str) -> None:
    """Whatever the input, verification fails with IdTokenError and nothing else."""
    with pytest.raises(IdTokenError):
        verify(token)


def test_jwks_without_keys_list_is_a_protocol_error() -> None:
    """A JWKS document without a keys list raises OAuthProtocolError."""
    with pytest.raises(OAuthProtocolError, match="keys"):
        verify(sign(claims()), {"keys": "nope"})


def test_unusable_jwks_entries_are_skipped() -> None:
    """Non-RSA, encryption, non-RS256, weak, broken and non-object entries are ignored."""
    # Deliberately weak: the JWKS parser must skip it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    entries = [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        jwk(KEY, "enc", use="enc"),
        jwk(KEY, "ps", alg="PS256"),
        jwk(weak, "weak"),
        jwk(KEY, "broken", n="!!"),
        jwk(KEY, "even-e", e=b64(b"\x02")),
        jwk(KEY, 7),  # type: ignore[arg-type]
        "not an object",
        jwk(KEY, "good"),
    ]
    keys = JwkSet.from_json({"keys": entries})
    assert [k.kid for k in keys.keys] == ["good"]


def test_jwk_without_alg_or_use_is_accepted() -> None:
    """alg and use are optional in a JWK and default to what we need."""
    entry = jwk(KEY)
    del entry["alg"], entry["use"]
    key = Jwk.from_dict(entry)
    assert key is not None and key.kid == "k1"


def test_jwk_repr_hides_key_material() -> None:
    """repr of a Jwk names the kid, not the key object."""
    key = Jwk.from_dict(jwk(KEY))
    assert repr(key) == "Jwk(kid='k1')"
