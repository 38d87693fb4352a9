"""What the signed links of an email stand for: one newsletter to leave, one
subscriber's preferences, one subscription request to confirm.

Each kind is made with its own :class:`~publisher.audience.tokens.Purpose`,
so a token opens no page but its own. An unsubscribe token names the
newsletter it came with (RFC 8058 one-click leaves *that* newsletter), as
``"<subscriber id>:<newsletter>"``; a bare id means every newsletter.

Digests sent before purposes existed carry one token for both links
(:func:`~publisher.audience.tokens.make_signer`); the readers below still
take those, so links already in inboxes keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature

from ..errors import BadToken
from .tokens import Purpose, make_signer, make_token, read_token, token_maker


@dataclass(frozen=True)
class UnsubscribeLink:
    """Who leaves what: ``newsletter`` None means every newsletter."""

    subscriber_id: int
    newsletter: str | None


def unsubscribe_token(secret: str, subscriber_key: str, newsletter: str | None) -> str:
    """The token of an unsubscribe link (``Recipient.key`` and the newsletter it leaves)."""
    value = subscriber_key if newsletter is None else f"{subscriber_key}:{newsletter}"
    return token_maker(secret, Purpose.UNSUBSCRIBE)(value)


def preferences_token(secret: str, subscriber_key: str) -> str:
    """The token of a preferences link."""
    return token_maker(secret, Purpose.PREFERENCES)(subscriber_key)


def confirm_token(secret: str, consent_id: int) -> str:
    """The token of a confirmation link: the consent record it confirms."""
    return make_token(secret, Purpose.CONFIRM, str(consent_id))


def _legacy(secret: str, token: str) -> str | None:
    try:
        return str(make_signer(secret).loads(token))
    except BadSignature:
        return None


def _subscriber_id(value: str) -> int:
    if not value.isdigit():
        raise BadToken("test", "This link came in a test message: there is no subscription.")
    return int(value)


def read_unsubscribe_token(secret: str, token: str) -> UnsubscribeLink:
    """:raises BadToken: forged, cut short, made for another page, or from a test message."""
    value = _legacy(secret, token)
    if value is None:
        value = read_token(secret, Purpose.UNSUBSCRIBE, token)
    key, _, newsletter = value.partition(":")
    return UnsubscribeLink(_subscriber_id(key), newsletter or None)


def read_preferences_token(secret: str, token: str) -> int:
    """The subscriber a preferences link is for.

    :raises BadToken: forged, cut short, made for another page, or from a test message.
    """
    value = _legacy(secret, token)
    if value is None:
        value = read_token(secret, Purpose.PREFERENCES, token)
    return _subscriber_id(value)


def read_confirm_token(secret: str, token: str, max_age: int) -> int:
    """The consent record a confirmation link confirms.

    :param max_age: seconds the link stays good.
    :raises BadToken: forged, cut short, expired or made for another page.
    """
    value = read_token(secret, Purpose.CONFIRM, token, max_age)
    if not value.isdigit():
        raise BadToken("invalid", "This link is not a confirmation link.")
    return int(value)
