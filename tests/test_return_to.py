"""return_to: only same-origin relative paths survive; every open-redirect form becomes `/`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_gateway.auth.return_to import DEFAULT_RETURN_TO, MAX_LENGTH, safe_return_to

OPEN_REDIRECTS = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%255C%255Cevil.example",
    "%2F%2Fevil.example",
    "/\t/evil.example",
    "/ /evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "//evil.example/%2e%2e",
    "///evil.example",
    "/.//evil.example",
    "/%2e//evil.example",
    "/x/..//evil.example",
    "/%3F/../..//evil.example",  # an encoded `?` does not end the path for a browser
    "/%23/../..//evil.example",
    "/%3f/%2e%2e/%2e%2e//evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "/%E2%80%8F/evil",
    "/%E2%80%AE/evil",
    "\u3031evil.example",
    "/\u3031evil.example",
    "/x%0d%0aSet-Cookie:a=b",
    "/x\r\nSet-Cookie:a=b",
    "/" + "a" * MAX_LENGTH,
    "",
    "evil.example",
    "?next=//evil",
    "#//evil",
]

SAFE = [
    "/",
    "/customers",
    "/customer/phoneNumber/135012345678",
    "/x?next=//evil",
    "/x?next=/../..//evil",  # dot segments in a real query are not resolved
    "/search?q=a%20b&page=2",
    "/customer/userName/%E5%BC%A0%E4%B8%89",
]


@pytest.mark.parametrize("value", OPEN_REDIRECTS)
def test_open_redirect_forms_fall_back_to_root(value: str):
    """Each known open-redirect trick is replaced by `/`."""
    assert safe_return_to(value) == DEFAULT_RETURN_TO


@pytest.mark.parametrize("value", SAFE)
def test_same_origin_paths_are_kept(value: str):
    """Ordinary same-origin paths (with queries and UTF-8 escapes) are kept verbatim."""
    assert safe_return_to(value) == value


def test_none_is_root():
    """No return_to at all means `/`."""
    assert safe_return_to(None) == DEFAULT_RETURN_TO


@given(st.text(max_size=80))
def test_result_never_leaves_the_origin(value: str):
    """Whatever goes in, the result is a path: one leading slash, no scheme, no backslash."""
    result = safe_return_to(value)
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert all(" " < c < "\x7f" for c in result)
