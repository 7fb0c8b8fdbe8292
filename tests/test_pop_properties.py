"""Property tests for ccc_gateway.ccc.pop: the product against the oracles (tests/oracles/),
the signing oracle against the official signer (aliyunsdkcore)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from aliyunsdkcore.auth.algorithm import sha_hmac1
from aliyunsdkcore.auth.composer import rpc_signature_composer
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles.pop_reshape import reshape_response, unflatten
from oracles.pop_signing import percent_encode as oracle_percent_encode
from oracles.pop_signing import sign_v1, string_to_sign, sts_signed_params

from ccc_gateway.ccc.pop.params import RequestShapeError, flatten_request
from ccc_gateway.ccc.pop.reshape import loads_reshaped, reshape
from ccc_gateway.ccc.pop.signing import bearer_params, form_body, percent_encode, sts_signed_body

# Module-level "__" names are not mangled; getattr keeps the intent (a private helper) visible.
sdk_string_to_sign: Callable[[str, dict[str, str]], str] = getattr(
    rpc_signature_composer, "__compose_string_to_sign"
)

# No timing assertions: a loaded CI machine must not fail a property on speed.
relaxed = settings(deadline=None)

utf8_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
any_json = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)
# "Signature" itself is never signed; the SDK removes it before composing, so leave it out.
sign_inputs = st.dictionaries(utf8_text.filter(lambda k: k != "Signature"), utf8_text, max_size=8)
pop_names = st.from_regex(r"[A-Z][A-Za-z0-9_-]{0,8}", fullmatch=True)
nested_capitalised = st.recursive(
    utf8_text,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(pop_names, inner, min_size=1, max_size=3)
    ),
    max_leaves=15,
)


# JSON text whose objects may repeat a name, and names that meet once trimmed and lower-cased.
json_names = st.sampled_from(["A", "a", " A", "", " ", "Items", "items", "X"]) | st.text(max_size=4)
json_text = st.recursive(
    (
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
    ).map(json.dumps),
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(json_names, inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=30,
)


def _walk_keys(obj: Any) -> list[str]:
    """Every object key in a structure, collected without recursion."""
    keys: list[str] = []
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            keys.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return keys


@relaxed
@given(sign_inputs, st.sampled_from(["GET", "POST"]))
def test_string_to_sign_matches_sdk(params: dict[str, str], method: str) -> None:
    """The oracle's string to sign equals aliyunsdkcore's for identical parameters."""
    assert string_to_sign(method, params) == sdk_string_to_sign(method, dict(params))


@relaxed
@given(sign_inputs, utf8_text)
def test_signature_matches_sdk(params: dict[str, str], secret: str) -> None:
    """The oracle's signature equals the SDK's HMAC-SHA1 over the SDK's string to sign."""
    expected = sha_hmac1.get_sign_string(sdk_string_to_sign("POST", dict(params)), secret + "&")
    assert sign_v1("POST", params, secret) == expected


@relaxed
@given(any_json)
def test_reshape_never_raises_and_lowers_keys(obj: Any) -> None:
    """Any JSON reshapes without error, as the oracle does; every key starts lower-case and
    is non-empty."""
    got = reshape(obj)
    assert got == reshape_response(obj) or (got != got and obj != obj)  # NaN != NaN
    for key in _walk_keys(got):
        assert key and key[0] == key[0].lower() and key == key.strip()


@relaxed
@given(json_text)
def test_loads_reshaped_is_reshape_of_loads(text: str) -> None:
    """loads_reshaped gives what parsing then reshaping (the oracle) gives, member order
    included."""
    expected = reshape_response(json.loads(text))
    got = loads_reshaped(text)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)
    assert type(got) is type(expected)


def test_bearer_body_holds_every_parameter() -> None:
    base = {"Action": "GetUser", "UserId": "a&b=c"}
    assert form_body(bearer_params(base, "tok")).count(b"&") == len(bearer_params(base, "")) - 1


@relaxed
@given(st.dictionaries(pop_names, nested_capitalised, max_size=4))
def test_flatten_unflatten_round_trip(params: dict[str, Any]) -> None:
    """unflatten inverts flatten_request for capitalised, non-empty nested inputs."""
    assert unflatten(flatten_request(params, max_depth=100)) == params


@relaxed
@given(st.dictionaries(st.text(max_size=8), any_json, max_size=6))
def test_flatten_only_raises_request_shape_error(params: dict[str, Any]) -> None:
    """Arbitrary input either flattens to string pairs or raises RequestShapeError."""
    try:
        flat = flatten_request(params, max_items=20)
    except RequestShapeError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in flat.items())
    assert all(k[0].isupper() for k in flat)


@relaxed
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_is_plain_and_exact(value: float) -> None:
    """Floats become plain decimals that parse back to the same number."""
    text = flatten_request({"x": value})["X"]
    assert "e" not in text.lower() and float(text) == value
    assert math.copysign(1, float(text)) == math.copysign(1, value)


@relaxed
@given(sign_inputs, utf8_text, utf8_text)
def test_sts_signed_body_holds_the_signed_params(params: dict[str, str], secret: str, token: str):
    """The signed body holds exactly the fields of the oracle's sts_signed_params (whose
    signature the SDK cross-check covers), in canonical order, Signature last."""
    keys = {"access_key_id": "STS.id", "access_key_secret": secret, "security_token": token}
    signed = sts_signed_params(params, method="POST", **keys)
    fields = sts_signed_body(params, method="POST", **keys).split(b"&")
    assert sorted(fields) == sorted(form_body(signed).split(b"&"))
    assert fields[-1] == form_body({"Signature": signed["Signature"]})
    names = [field.partition(b"=")[0] for field in fields[:-1]]
    assert names == [form_body({k: ""})[:-1] for k in sorted(signed) if k != "Signature"]


@relaxed
@given(utf8_text | st.from_regex(r"[A-Za-z0-9+/=:_.~-]*", fullmatch=True))
def test_percent_encode_matches_the_oracle(text: str) -> None:
    assert percent_encode(text) == oracle_percent_encode(text)
