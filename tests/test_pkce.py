"""PKCE (RFC 7636) verifier, challenge, state and nonce."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_gateway.auth.oauth import pkce as pkce

# RFC 7636 Appendix B.
RFC_OCTETS = bytes(
    [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
     22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
)  # fmt: skip
# The brief quoted "dBjftJeZ4CVP-mJ92K9uZ1Hp5jG2mF5sEX7gWfKZ_3A", a corrupted copy: the RFC's
# octets encode to the value below, and only it hashes to the RFC's challenge.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_s256_challenge_matches_rfc7636_appendix_b() -> None:
    """The S256 challenge of the RFC's verifier is the RFC's challenge."""
    assert pkce.s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_verifier_from_rfc_octets_matches_rfc7636_appendix_b() -> None:
    """The RFC's 32 random octets encode to the RFC's verifier."""
    assert pkce.new_verifier(randbytes=lambda n: RFC_OCTETS[:n]) == RFC_VERIFIER


def test_default_verifier_is_43_unreserved_characters() -> None:
    """A default verifier has 43 characters from the RFC's unreserved set."""
    verifier = pkce.new_verifier()
    assert len(verifier) == 43
    assert UNRESERVED.fullmatch(verifier)


def test_largest_verifier_is_128_characters() -> None:
    """96 random bytes give the RFC's maximum verifier length of 128."""
    assert len(pkce.new_verifier(96)) == 128


@pytest.mark.parametrize("nbytes", [0, 31, 97])
def test_verifier_size_outside_rfc_bounds_is_refused(nbytes: int) -> None:
    """Sizes that would break the 43..128 character rule raise ValueError."""
    with pytest.raises(ValueError, match="nbytes"):
        pkce.new_verifier(nbytes)


def test_verifiers_are_fresh_each_time() -> None:
    """Two verifiers from the real CSPRNG differ."""
    assert pkce.new_verifier() != pkce.new_verifier()


def test_state_and_nonce_are_url_safe_and_fresh() -> None:
    """state and nonce are 43 URL-safe characters and never repeat."""
    values = [pkce.new_state(), pkce.new_state(), pkce.new_nonce(), pkce.new_nonce()]
    assert all(len(v) == 43 and URLSAFE.fullmatch(v) for v in values)
    assert len(set(values)) == 4


def test_injected_randomness_makes_values_deterministic() -> None:
    """An injected byte source fully determines state and nonce."""
    zeros = bytes
    assert pkce.new_state(randbytes=zeros) == "A" * 43
    assert pkce.new_nonce(randbytes=zeros) == "A" * 43


def test_short_random_source_is_refused() -> None:
    """A random source returning too few bytes raises instead of weakening the value."""
    with pytest.raises(ValueError, match="wrong number of bytes"):
        pkce.new_state(randbytes=lambda n: b"\x00")


def test_non_ascii_verifier_is_refused() -> None:
    """A verifier outside ASCII (forbidden by the RFC) cannot be hashed silently."""
    with pytest.raises(UnicodeEncodeError):
        pkce.s256_challenge("vérifier" * 6)


@given(st.binary(min_size=32, max_size=96))
def test_challenge_is_always_43_url_safe_characters(data: bytes) -> None:
    """Any valid verifier yields a 43-character unpadded base64url challenge."""
    challenge = pkce.s256_challenge(pkce.new_verifier(len(data), randbytes=lambda n: data))
    assert len(challenge) == 43
    assert URLSAFE.fullmatch(challenge)
