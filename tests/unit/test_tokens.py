"""Signed link tokens (publisher/audience/tokens.py), without a database."""

from __future__ import annotations

import zlib

from hypothesis import example, given, strategies as st

from publisher.audience.tokens import (
    TIMED,
    Purpose,
    _compressed_size,
    make_token,
    read_token,
    token_maker,
)


# A digest send makes its tokens with token_maker (the HMAC keyed once): each is the
# token make_token gives, for every purpose, so the links already sent keep working
# and a resent message is byte for byte the first.
@given(
    st.one_of(st.text(max_size=60), st.from_regex(r"[A-Za-z0-9:._-]{0,60}", fullmatch=True)),
    st.sampled_from(list(Purpose)),
)
@example("12:weekly", Purpose.UNSUBSCRIBE)
@example("a" * 60, Purpose.PREFERENCES)  # itsdangerous compresses it
@example("t0123456789ab", Purpose.PREFERENCES)
def test_token_maker_makes_the_tokens_make_token_makes(value: str, purpose: Purpose) -> None:
    made = token_maker("a secret", purpose)(value)
    assert read_token("a secret", purpose, made) == value
    if purpose not in TIMED:
        assert made == make_token("a secret", purpose, value)


# Whether itsdangerous compresses a payload depends on the length zlib.compress gives;
# the token maker reads it from a smaller deflate state: the same length, on data short
# or long, repetitive or not (and the same deflate stream, after the 2-byte header).
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text("ab:1", max_size=200).map(str.encode),
        st.from_regex(rb"[0-9a-z:._-]{0,130}", fullmatch=True),
    )
)
@example(b"a" * 119)
@example(b"a" * 120)
@example(b"ab" * 60)
def test_compressed_size_is_zlibs(data: bytes) -> None:
    assert _compressed_size(data) == len(zlib.compress(data))
    if len(data) < 120:
        deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 9, 1)
        assert (deflate.compress(data) + deflate.flush())[2:] == zlib.compress(data)[2:]
