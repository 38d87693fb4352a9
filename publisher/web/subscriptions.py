"""The links every digest carries: unsubscribe and preferences.

``/unsubscribe/<token>``: ``GET`` asks to confirm (mail scanners follow
links, so a GET never changes anything); ``POST`` unsubscribes, which is
also RFC 8058 one-click unsubscription from the mail client
(``List-Unsubscribe-Post: List-Unsubscribe=One-Click``), so that POST
needs no CSRF token: the signed token in the URL is the authority.
``/preferences/<token>``: choose the topics (tags) the digest is about.
Tokens are signed (itsdangerous); a bad one gets a 400 page saying what
to do.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from itsdangerous import BadSignature
from werkzeug.exceptions import BadRequest, NotFound, ServiceUnavailable

from .. import queries
from ..audience.subscribers import set_topics
from ..audience.subscribers import unsubscribe as unsubscribe_subscriber
from ..audience.tokens import make_signer
from ..models import Subscriber
from .app import message_page, web_context

blueprint = Blueprint("subscriptions", __name__)

GONE = "There is no such subscription any more."


def _subscriber_id(token: str) -> int:
    """The subscriber a signed link is for; a 400 page for anything else."""
    context = web_context()
    if context.factory is None or context.secret is None:
        raise ServiceUnavailable(
            "Subscriptions are not handled here: start `publisher serve` with "
            f"{context.settings.web.secret_key_env} set."
        )
    try:
        key = str(make_signer(context.secret).loads(token))
    except BadSignature:
        raise BadRequest(
            "This link is not valid (it may have been cut short by your mail program). "
            "Use the link at the bottom of the latest email."
        ) from None
    if not key.isdigit():
        raise BadRequest("This link came in a test message: there is no subscription to change.")
    return int(key)


@blueprint.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int]:
    subscriber_id = _subscriber_id(token)
    context = web_context()
    assert context.factory is not None
    title = context.settings.site.title
    if request.method == "POST":
        address = unsubscribe_subscriber(context.factory, subscriber_id)
        if address is None:
            raise NotFound(GONE)
        return message_page("Unsubscribed", f"{address} will get no more emails from {title}.", 200)
    return render_template("unsubscribe.html", token=token), 200


@blueprint.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> str:
    subscriber_id = _subscriber_id(token)
    context = web_context()
    assert context.factory is not None
    saved = request.method == "POST"
    if saved and set_topics(context.factory, subscriber_id, request.form.getlist("topic")) is None:
        raise NotFound(GONE)
    with context.factory() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            raise NotFound(GONE)
        mine = {t.slug for t in subscriber.topics}
        topics = [(t.slug, t.name, t.slug in mine) for t in queries.all_tags(session)]
        status = subscriber.status.value
    return render_template(
        "preferences.html", token=token, topics=topics, status=status, saved=saved
    )
