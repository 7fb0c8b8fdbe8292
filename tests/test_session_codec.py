"""The session codec: sealing, opening, rejecting, key rotation, caching and chunking."""

from __future__ import annotations

import json
import re
import secrets
import zlib
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from ccc_gateway.sessions.codec import (
    CLOCK_SKEW,
    MAX_CHUNKS,
    MAX_PAYLOAD_BYTES,
    CodecError,
    SessionCodec,
    SessionTooLarge,
    chunk_index,
    chunk_name,
    split_value,
)

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NOW = 1_700_000_000.0
DAY = 86400.0
PAYLOAD: dict[str, Any] = {"sub": "agent@example", "tokens": {"access": "at-1", "exp": 3600}}
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _seal(raw: bytes, *, key: str = KEY_A, now: float = NOW) -> str:
    """A token sealed around arbitrary bytes, as an attacker holding the key could make."""
    return Fernet(key).encrypt_at_time(raw, int(now)).decode().rstrip("=")


def _other_char(char: str) -> str:
    return "A" if char != "A" else "B"


@pytest.fixture
def codec() -> SessionCodec:
    return SessionCodec([KEY_A])


def test_round_trip(codec: SessionCodec) -> None:
    """A sealed payload opens to an equal payload."""
    token = codec.encode(PAYLOAD, now=NOW)
    assert codec.decode(token, now=NOW, max_age=DAY) == PAYLOAD


def test_token_is_cookie_safe_and_unpadded(codec: SessionCodec) -> None:
    """Tokens use only base64url letters without `=`, so cookies never need quoting."""
    token = codec.encode({"x": 'é ; = " \\ ,'}, now=NOW)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_payload_is_compressed_before_encryption(codec: SessionCodec) -> None:
    """A repetitive payload yields a token far shorter than its JSON."""
    payload = {"groups": ["sales-team-north"] * 200}
    assert len(codec.encode(payload, now=NOW)) < len(json.dumps(payload)) // 4


def test_encode_rejects_a_payload_over_the_limit(codec: SessionCodec) -> None:
    """A payload the decoder would refuse fails loudly at encode time, without its content."""
    secret = secrets.token_hex(MAX_PAYLOAD_BYTES)
    with pytest.raises(SessionTooLarge) as info:
        codec.encode({"x": secret}, now=NOW)
    assert secret not in str(info.value)


def test_rotation_old_key_decrypts_in_the_ring() -> None:
    """A token sealed with key A opens under the ring [B, A] and asks to be re-encrypted."""
    token = SessionCodec([KEY_A]).encode(PAYLOAD, now=NOW)
    ring = SessionCodec([KEY_B, KEY_A])
    assert ring.decode(token, now=NOW, max_age=DAY) == PAYLOAD
    assert ring.needs_reencrypt(token)


def test_rotation_dropped_key_no_longer_decrypts() -> None:
    """Once key A leaves the ring its tokens are rejected."""
    token = SessionCodec([KEY_A]).encode(PAYLOAD, now=NOW)
    assert SessionCodec([KEY_B]).decode(token, now=NOW, max_age=DAY) is None


def test_newest_key_token_needs_no_reencrypt() -> None:
    """The ring seals with its first key, and such a token is current."""
    ring = SessionCodec([KEY_B, KEY_A])
    token = ring.encode(PAYLOAD, now=NOW)
    assert not ring.needs_reencrypt(token)
    assert SessionCodec([KEY_B]).decode(token, now=NOW, max_age=DAY) == PAYLOAD


def test_needs_reencrypt_is_false_for_garbage(codec: SessionCodec) -> None:
    """Only an authentic token can ask to be re-encrypted."""
    assert not codec.needs_reencrypt("garbage")


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tampered_token_is_rejected(codec: SessionCodec, where: str) -> None:
    """Changing one character anywhere, including the last, yields None."""
    token = codec.encode(PAYLOAD, now=NOW)
    index = {"start": 0, "middle": len(token) // 2, "end": len(token) - 1}[where]
    tampered = token[:index] + _other_char(token[index]) + token[index + 1 :]
    assert codec.decode(tampered, now=NOW, max_age=DAY) is None


@pytest.mark.parametrize("keep", [0, 1, 9, 40, -1])
def test_truncated_token_is_rejected(codec: SessionCodec, keep: int) -> None:
    """A token cut short (as a dropped chunk would) yields None."""
    token = codec.encode(PAYLOAD, now=NOW)
    assert codec.decode(token[:keep], now=NOW, max_age=DAY) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "gAAAAA",
        "not base64 at all!",
        "a" * 100_000,
        "é" * 50,
        "\x00\x01",
        "８０",  # fullwidth digits: str.isdigit-style traps
    ],
)
def test_garbage_is_rejected(codec: SessionCodec, value: str) -> None:
    """Empty, non-base64, non-ASCII and huge values yield None and are not cached."""
    assert codec.decode(value, now=NOW, max_age=DAY) is None
    assert len(codec.cache) == 0


def test_non_ascii_inside_a_valid_token_is_rejected(codec: SessionCodec) -> None:
    """A non-ASCII character spliced into a valid token yields None, not an exception."""
    token = codec.encode(PAYLOAD, now=NOW)
    assert codec.decode(token[:10] + "ü" + token[10:], now=NOW, max_age=DAY) is None


def test_padded_spelling_is_rejected(codec: SessionCodec) -> None:
    """Each token has one spelling: `=` padding is not accepted."""
    token = codec.encode({"k": "v"}, now=NOW)
    assert codec.decode(token + "=" * (-len(token) % 4 or 4), now=NOW, max_age=DAY) is None


def test_expired_by_max_age(codec: SessionCodec) -> None:
    """A token is valid up to max_age after it was written, and not a second later."""
    token = codec.encode(PAYLOAD, now=NOW)
    assert codec.decode(token, now=NOW + DAY, max_age=DAY) == PAYLOAD
    assert codec.decode(token, now=NOW + DAY + 1, max_age=DAY) is None


def test_future_timestamp_beyond_skew_is_rejected(codec: SessionCodec) -> None:
    """A token stamped in the future is accepted within the clock skew only."""
    near = codec.encode(PAYLOAD, now=NOW + CLOCK_SKEW)
    far = codec.encode(PAYLOAD, now=NOW + 365 * DAY)
    assert codec.decode(near, now=NOW, max_age=DAY) == PAYLOAD
    assert codec.decode(far, now=NOW, max_age=DAY) is None


def test_decompression_bomb_is_rejected(codec: SessionCodec) -> None:
    """An authentic token inflating far past the payload cap yields None."""
    bomb = zlib.compress(b'{"a":"' + b"a" * (50 * 1024 * 1024) + b'"}', 9)
    assert codec.decode(_seal(bomb), now=NOW, max_age=DAY) is None


@pytest.mark.parametrize(
    "raw",
    [
        zlib.compress(b"not json"),
        zlib.compress(b"[1, 2, 3]"),
        zlib.compress(b'"a string"'),
        zlib.compress(b"\xff\xfe{}"),
        zlib.compress(b"[" * 20_000 + b"]" * 20_000),
        b'{"not": "compressed"}',
        zlib.compress(b'{"a": 1}')[:-3],
        zlib.compress(b'{"a": 1}') + b"trailing",
    ],
    ids=["text", "array", "string", "bad-utf8", "deep", "raw", "cut", "trailing"],
)
def test_authentic_but_malformed_payload_is_rejected(codec: SessionCodec, raw: bytes) -> None:
    """Correctly sealed bytes that `encode` could not have produced yield None."""
    assert codec.decode(_seal(raw), now=NOW, max_age=DAY) is None


def _frozen(payload: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(payload.items()))


def test_cache_returns_equal_results(codec: SessionCodec) -> None:
    """Repeated decode_as of one token are the same object and cached once; decode is not
    cached at all (login states: a PKCE verifier is opened once and not kept)."""
    token = codec.encode(PAYLOAD, now=NOW)
    first = codec.decode_as(token, now=NOW, max_age=DAY, build=_frozen)
    second = codec.decode_as(token, now=NOW + 1, max_age=DAY, build=_frozen)
    assert first is second and first == _frozen(PAYLOAD)
    assert len(codec.cache) == 1
    other = codec.encode({"verifier": "v"}, now=NOW)
    assert codec.decode(other, now=NOW, max_age=DAY) == {"verifier": "v"}
    assert len(codec.cache) == 1


def test_cache_skips_decryption_on_a_hit(
    codec: SessionCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeated token is decrypted only once."""
    calls: list[object] = []
    original = Fernet.decrypt

    def counting(self: Fernet, token: bytes | str, ttl: int | None = None) -> bytes:
        calls.append(token)
        return original(self, token, ttl)

    monkeypatch.setattr(Fernet, "decrypt", counting)
    token = codec.encode(PAYLOAD, now=NOW)
    for _ in range(5):
        assert codec.decode_as(token, now=NOW, max_age=DAY, build=_frozen) == _frozen(PAYLOAD)
    assert len(calls) == 1


def test_cache_respects_expiry(codec: SessionCodec) -> None:
    """A cached token still expires against its own Fernet timestamp."""
    token = codec.encode(PAYLOAD, now=NOW)
    assert codec.decode(token, now=NOW, max_age=DAY) == PAYLOAD
    assert codec.decode(token, now=NOW + 2 * DAY, max_age=DAY) is None
    assert codec.decode(token, now=NOW, max_age=60) == PAYLOAD


def test_cache_stays_bounded_and_evicted_tokens_still_decode() -> None:
    """The cache never holds more than its size; an evicted token is simply opened again."""
    codec = SessionCodec([KEY_A], cache_size=4)
    tokens = [codec.encode({"n": n}, now=NOW) for n in range(10)]
    for token in tokens:
        codec.decode_as(token, now=NOW, max_age=DAY, build=_frozen)
    assert len(codec.cache) == 4
    assert codec.decode_as(tokens[0], now=NOW, max_age=DAY, build=_frozen) == (("n", 0),)
    assert len(codec.cache) == 4


def test_mutating_a_result_does_not_leak_into_the_cache(codec: SessionCodec) -> None:
    """Callers get copies: changing nested values of one result leaves the next intact."""
    token = codec.encode({"tokens": {"scopes": ["a"]}, "n": 1}, now=NOW)
    first = codec.decode(token, now=NOW, max_age=DAY)
    assert first is not None
    first["n"] = 2
    first["tokens"]["scopes"].append("b")
    first["tokens"]["new"] = True
    assert codec.decode(token, now=NOW, max_age=DAY) == {"tokens": {"scopes": ["a"]}, "n": 1}


def test_repr_hides_the_keys() -> None:
    """Neither key appears in the codec's repr."""
    text = repr(SessionCodec([KEY_A, KEY_B]))
    assert KEY_A not in text and KEY_B not in text


def test_codec_needs_a_key() -> None:
    """An empty key ring is a configuration error."""
    with pytest.raises(ValueError, match="at least one key"):
        SessionCodec([])


@given(st.text())
def test_decode_never_raises_on_arbitrary_text(value: str) -> None:
    """Any text decodes to None rather than raising."""
    assert SessionCodec([KEY_A]).decode(value, now=NOW, max_age=DAY) is None


@given(st.text(alphabet=URLSAFE, min_size=80, max_size=400))
def test_decode_never_raises_on_token_shaped_text(value: str) -> None:
    """Text in the token alphabet that was not sealed by us decodes to None."""
    assert SessionCodec([KEY_A]).decode("gAAAAA" + value, now=NOW, max_age=DAY) is None


_SEALED = SessionCodec([KEY_A]).encode(PAYLOAD, now=NOW)


@given(st.integers(0, len(_SEALED) - 1), st.sampled_from(URLSAFE))
def test_any_single_character_change_is_rejected(index: int, char: str) -> None:
    """Replacing any one character of a token with a different one yields None."""
    tampered = _SEALED[:index] + char + _SEALED[index + 1 :]
    expected = PAYLOAD if tampered == _SEALED else None
    assert SessionCodec([KEY_A]).decode(tampered, now=NOW, max_age=DAY) == expected


def test_split_value_cuts_and_joins_back() -> None:
    """Chunks are at most max_chunk long and join to the original value."""
    value = "x" * 2500 + "y" * 501
    chunks = split_value(value, 1000)
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1]
    assert "".join(chunks) == value


def test_split_value_short_and_exact() -> None:
    """A short value is one chunk; an exact multiple leaves no empty tail."""
    assert split_value("abc", 10) == ["abc"]
    assert split_value("ab" * 5, 5) == ["ababa", "babab"]


def test_split_value_fails_loudly_past_the_chunk_limit() -> None:
    """MAX_CHUNKS chunks are fine; one more raises SessionTooLarge without the value."""
    assert len(split_value("v" * (MAX_CHUNKS * 10), 10)) == MAX_CHUNKS
    value = "s" * (MAX_CHUNKS * 10 + 1)
    with pytest.raises(SessionTooLarge) as info:
        split_value(value, 10)
    assert value not in str(info.value)
    assert isinstance(info.value, CodecError)  # the codec's own type, answered 500 by the views


def test_chunk_names_and_indexes() -> None:
    """Chunk 0 is the bare name, then name-1, name-2, …; only canonical names parse back."""
    name = "__Host-ccc"
    assert [chunk_name(name, i) for i in range(3)] == [name, f"{name}-1", f"{name}-2"]
    assert [chunk_index(chunk_name(name, i), name) for i in range(MAX_CHUNKS)] == list(
        range(MAX_CHUNKS)
    )
    for other in [f"{name}-01", f"{name}-0", f"{name}-x", f"{name}-", f"{name}x", "sid", "-1"]:
        assert chunk_index(other, name) is None
    assert chunk_index(f"{name}-١", name) is None  # Arabic-Indic digit: isdigit() but not ours
