"""Signed link tokens (publisher/audience/tokens.py), without a database."""

from __future__ import annotations

from hypothesis import example, given, strategies as st

from publisher.audience.tokens import TIMED, Purpose, make_token, read_token, token_maker


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
