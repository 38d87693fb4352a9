"""Signed tokens for the links of every email (itsdangerous).

Each link has a *purpose* (:class:`Purpose`), used as the itsdangerous salt,
so a token made for one page is refused by every other: an unsubscribe
token cannot open the preferences page, and a confirmation token confirms
nothing but its own consent record. Confirmation tokens carry their time
and expire; unsubscribe and preferences tokens carry none (they are good as
long as the subscription, and a resent digest must be byte for byte the
message first sent, links included); :func:`read_token` says which of the ways a token can be bad it
is (:class:`~publisher.errors.BadToken` ``reason``).

``make_signer`` is the signer of the links already sent in digests
(unsubscribe and preferences share it); those links keep working.
"""

from __future__ import annotations

import base64
import enum
import functools
import hmac
import re
import zlib
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from ..errors import BadToken

#: itsdangerous salt: an unsubscribe token is good for nothing else
UNSUBSCRIBE_SALT = "unsubscribe"


class Purpose(enum.StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"


def make_signer(secret: str) -> URLSafeSerializer:
    """The signer of unsubscribe and preference links."""
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT)


#: purposes whose tokens carry their time (and so can expire)
TIMED = frozenset({Purpose.CONFIRM})


@functools.lru_cache(maxsize=16)
def _signer(secret: str, purpose: Purpose) -> URLSafeSerializer | URLSafeTimedSerializer:
    salt = f"publisher.{purpose.value}"
    if purpose in TIMED:
        return URLSafeTimedSerializer(secret, salt=salt)
    return URLSafeSerializer(secret, salt=salt)


def _loads(secret: str, purpose: Purpose, token: str, max_age: int | None = None) -> str:
    signer = _signer(secret, purpose)
    if isinstance(signer, URLSafeTimedSerializer):
        return str(signer.loads(token, max_age=max_age))
    return str(signer.loads(token))


def make_token(secret: str, purpose: Purpose, value: str) -> str:
    """A token for ``value`` (a subscriber id, a consent id) good only for ``purpose``."""
    return str(_signer(secret, purpose).dumps(value))


#: a value whose JSON is itself in quotes: nothing to escape (ASCII letters, digits, :._-)
_PLAIN = re.compile(r"[A-Za-z0-9:._-]*")
#: below this many bytes :func:`_compressed_size` uses a small deflate state
_SMALL = 120


def _compressed_size(data: bytes) -> int:
    """``len(zlib.compress(data))``, what itsdangerous compares to decide whether to
    compress a payload, for a small fraction of its cost on short data.

    ``zlib.compress`` sets up deflate's default state (a 32 KiB window, 64 KiB of hash
    table, 64 KiB of symbol buffer: fresh pages on each call), ~15-50 us for a
    payload of a dozen bytes; a digest makes two tokens per message. For data shorter
    than the smallest window's reach (250 bytes) and than the smallest symbol buffer
    (127 symbols), the smallest state (9 window bits, memory level 1) finds the same
    matches and writes the same deflate stream at the same level (only the 2-byte
    header names another window size): the same length (a test compares the two on
    random data). Longer data takes ``zlib.compress``.
    """
    if len(data) >= _SMALL:
        return len(zlib.compress(data))
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 9, 1)
    return len(deflate.compress(data)) + len(deflate.flush())


@functools.lru_cache(maxsize=16)
def token_maker(secret: str, purpose: Purpose) -> Callable[[str], str]:
    """:func:`make_token` for many values: the same tokens (a property test holds them
    equal), with the key derived and the HMAC keyed once rather than per token, and
    itsdangerous's payload (compact JSON, zlib when that is shorter, URL-safe base64
    without padding) written directly for the plain values a digest signs (subscriber
    ids and newsletter names): a digest send makes two tokens per message.

    Anything else takes itsdangerous's own path. A maker that would not give
    itsdangerous's token for a probe value is never used.
    """
    plain = functools.partial(make_token, secret, purpose)
    serializer = _signer(secret, purpose)
    if purpose in TIMED:  # the time goes into the payload: nothing to keep
        return plain
    signer = serializer.make_signer()
    keyed = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
    sep = signer.sep

    def make(value: str) -> str:
        if _PLAIN.fullmatch(value) is None:
            return plain(value)
        data = f'"{value}"'.encode("ascii")
        if _compressed_size(data) < len(data) - 1:  # itsdangerous would compress it
            return plain(value)
        payload = base64.urlsafe_b64encode(data).rstrip(b"=")
        mac = keyed.copy()
        mac.update(payload)
        return (payload + sep + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")).decode()

    probe = "12:probe"
    return make if make(probe) == plain(probe) else plain


def read_token(secret: str, purpose: Purpose, token: str, max_age: int | None = None) -> str:
    """The value a token was made for.

    :param max_age: seconds a token stays good (None: forever).
    :raises BadToken: ``expired``, ``purpose`` (made for another page) or ``invalid``.
    """
    try:
        return _loads(secret, purpose, token, max_age)
    except SignatureExpired:
        raise BadToken(
            "expired", "This link has expired: ask for a new one on the subscribe page."
        ) from None
    except BadSignature:
        pass
    for other in Purpose:
        if other is not purpose:
            try:
                _loads(secret, other, token)
            except BadSignature:
                continue
            raise BadToken(
                "purpose",
                f"This link is for {other.value}, not {purpose.value}: use the link "
                "meant for this page.",
            )
    raise BadToken(
        "invalid",
        "This link is not valid (it may have been cut short by your mail program): use the "
        "link in the latest email.",
    )
