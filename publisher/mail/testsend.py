"""``publisher digest test-send``: the digest as it stands, to one address; nothing recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from ..addresses import normalise_address
from ..audience.recipients import recipient_for
from ..config import Settings
from .compose import Composed, compose, publish_web_version, secret_key, web_version_path
from .smtp import Mailer
from .window import digest_settings


def send_test(
    factory: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    to: str,
    now: datetime,
    name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Composed:
    """Send the digest as it stands to one address; nothing is recorded (its web
    version is written, for the message's link, unless the send fails)."""
    address = normalise_address(to)
    config = digest_settings(settings, name)
    key = secret_key(settings, required=True)
    with factory() as session:
        recipient = recipient_for(session, address, config.name)
        editions, composed = compose(session, settings, config, recipient, now, since, until, key)
    everyone = editions.template(())
    assert everyone is not None
    # the message's "View in browser" link works when it arrives; a message that
    # never left leaves no page behind (but the page of a digest sent for the same
    # window, which subscribers' links point at, stays)
    rendered = everyone.rendered
    existed = web_version_path(settings, rendered.digest).exists()
    page = publish_web_version(settings, rendered)
    try:
        message = composed.message
        if settings.email.dkim is not None:  # signed as the digests are
            from .signing import DkimSigner

            message = DkimSigner(settings.email.dkim, settings.source).sign(message)
        mailer.send(settings.email.sender_address, address, message)
    except BaseException:
        if not existed:
            page.unlink(missing_ok=True)
        raise
    return composed
