"""Signed tokens for the links in every digest (itsdangerous)."""

from __future__ import annotations

from itsdangerous import URLSafeSerializer

#: itsdangerous salt: an unsubscribe token is good for nothing else
UNSUBSCRIBE_SALT = "unsubscribe"


def make_signer(secret: str) -> URLSafeSerializer:
    """The signer of unsubscribe and preference links."""
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT)
