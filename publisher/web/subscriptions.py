"""The reader's pages: subscribe (double opt-in), confirm, preferences, unsubscribe.

- ``/subscribe``: address, name, newsletters, topics. A sent form gets the
  same answer whether the address is new, known or unsubscribed (no
  address enumeration) and the confirmation email goes out in the
  background (:mod:`.confirmation`), so the timing tells nothing either.
  A honeypot field, a CSRF token (Flask-WTF), a limit per client
  (:mod:`.throttle`) and one per address (confirmation emails) keep robots
  and mail-bombers out. No JavaScript is needed.
- ``/confirm/<token>``: ``GET`` shows a button, ``POST`` confirms (mail
  scanners follow links, so a GET changes nothing). The link expires after
  ``web.confirm_days`` and works once.
- ``/preferences/<token>``: the newsletters received and the topics in each.
- ``/unsubscribe/<token>``: ``GET`` asks; ``POST`` leaves the newsletter the
  link came with, and is also RFC 8058 one-click unsubscription from the
  mail client (``List-Unsubscribe=One-Click``), answered without a page or
  a redirect. That POST needs no CSRF token: the signed token is the authority.

Every token has its purpose (:mod:`publisher.audience.links`); a forged,
cut, expired, used or wrong-purpose one gets a 400 page saying what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Blueprint, render_template, request, url_for
from markupsafe import escape
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound, ServiceUnavailable, TooManyRequests
from werkzeug.wrappers import Response

from .. import queries
from ..addresses import normalise_address
from ..audience.choices import Choice, display_name, newsletter_names
from ..audience.consent import ConsentGiven
from ..audience.links import (
    confirm_token,
    preferences_token,
    read_confirm_token,
    read_preferences_token,
    read_unsubscribe_token,
)
from ..audience.names import MAX_NAME, tidy_name
from ..audience.signup import request_subscription
from ..audience.subscribers import (
    check_unused,
    confirm as confirm_consent,
    profile,
    set_preferences,
    unsubscribe as leave,
)
from ..errors import AddressError, NameRefused, NotFound as NotFoundError
from ..models import Consent, ConsentMethod, Subscriber, SubscriberStatus
from ..urls import Urls
from .app import WebContext, message_page, web_context
from .confirmation import Confirmation
from .throttle import client_key, window_start

log = logging.getLogger(__name__)

blueprint = Blueprint("subscriptions", __name__)

GONE = "There is no such subscription any more."
#: the words a reader agrees to; shown on the form and kept in the consent record
CONSENT_TEXT = (
    "I want to receive the newsletters ticked above from {title} by email. "
    "I can leave at any time with the link in every email."
)
#: the honeypot: a field people never see (hidden, skipped by Tab) and robots fill in
HONEYPOT = "website"


def _ready() -> WebContext:
    """The context, if this server handles subscriptions; a 503 page otherwise."""
    context = web_context()
    if context.factory is None or context.secret is None:
        # the reader is told to come back; the operator, in the log, what to do
        log.warning(
            "a subscription page was asked for: start `publisher serve` with %s set",
            context.settings.web.secret_key_env,
        )
        raise ServiceUnavailable(
            "Subscriptions are not open at the moment. Please try again later."
        )
    return context


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SubscribeForm:
    """The subscribe form as sent (or empty), and what is wrong with it."""

    address: str = ""
    name: str = ""
    newsletters: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    honeypot: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, form: MultiDict[str, str]) -> SubscribeForm:
        return cls(
            form.get("address", "").strip(),
            " ".join(form.get("name", "").split()),
            form.getlist("newsletter"),
            form.getlist("topic"),
            form.get(HONEYPOT, ""),
        )

    def check(self, newsletters: list[str]) -> str:
        """Fill ``errors``; the normalised address when there are none."""
        address = ""
        try:
            address = normalise_address(self.address)
        except AddressError as e:
            self.errors["address"] = f"This is not an address we can write to: {e.why}."
        try:
            tidy_name(self.name)
        except NameRefused as e:
            self.errors["name"] = (
                "Please write the name without control characters."
                if e.length is None
                else f"Please keep the name under {MAX_NAME} characters."
            )
        if not self.newsletters or not set(self.newsletters) <= set(newsletters):
            self.errors["newsletter"] = "Tick at least one newsletter."
        return address


def _subscribe_page(context: WebContext, form: SubscribeForm, status: int) -> tuple[str, int]:
    assert context.factory is not None
    with context.factory() as session:
        topics = [(t.slug, t.name) for t in queries.all_tags(session)]
    newsletters = newsletter_names(context.settings)
    chosen = form.newsletters or (newsletters if len(newsletters) == 1 else [])
    page = render_template(
        "subscribe.html",
        form=form,
        newsletters=newsletters,
        chosen=chosen,
        topics=topics,
        consent=CONSENT_TEXT.format(title=context.settings.site.title),
        honeypot=HONEYPOT,
    )
    return page, status


#: stands in for the address while the accepted form's page is rendered once
SENT_STANDIN = "SENT-ADDRESS-STANDIN"
#: accepted-form pages kept, by script root (a deployment has one or two)
MAX_CACHED_PAGES = 4


def _sent(address: str) -> tuple[str, int]:
    """The one answer to every accepted form: the same whoever the address belongs to.

    The page differs only by the address, so it is rendered once (per script
    root: the stylesheet's URL depends on it behind a proxy) with a stand-in,
    and each answer is that page with the address escaped into it, as the
    template's autoescape would have.
    """
    pages = web_context().pages
    pieces = pages.get(request.script_root)
    if pieces is None:
        page, _ = message_page(
            "Check your inbox",
            f"If {SENT_STANDIN} can receive our newsletters, an email with a confirmation link "
            "is on its way to it (it may take a few minutes). Nothing is sent to you until you "
            "open that link.",
            200,
            hint="No email? Look in the spam folder, or send the form again later.",
        )
        pieces = page.split(SENT_STANDIN)
        # the script root comes from a header (X-Forwarded-Prefix) the client may set
        # when no proxy clears it: a few are kept, not one per value sent
        if len(pages) < MAX_CACHED_PAGES:
            pages[request.script_root] = pieces
    return str(escape(address)).join(pieces), 200


@blueprint.route("/subscribe", methods=["GET", "POST"])
def subscribe() -> tuple[str, int]:
    context = _ready()
    assert context.factory is not None and context.secret is not None
    if request.method != "POST":  # GET, and HEAD (Flask's GET without the body)
        return _subscribe_page(context, SubscribeForm(), 200)
    if not context.throttle.hit(client_key(request.remote_addr)):
        raise TooManyRequests(
            "Too many subscribe requests came from your network. Please try again later."
        )
    form = SubscribeForm.read(request.form)
    if form.honeypot:
        return _sent(form.address)  # a robot: answer as usual, do nothing
    address = form.check(newsletter_names(context.settings))
    if form.errors:
        return _subscribe_page(context, form, 400)
    settings, now = context.settings, _now()
    urls = Urls.from_settings(settings)
    consent = ConsentGiven(
        ConsentMethod.FORM,
        CONSENT_TEXT.format(title=settings.site.title),
        now,
        page=urls.subscribe(),
        client_address=request.remote_addr,
    )
    choices = [Choice(n, tuple(form.topics)) for n in form.newsletters]
    limit = window_start(settings.web.subscribe_limit_per_address, now)
    try:
        requested = request_subscription(
            context.factory, settings, address, form.name or None, choices, consent, now, limit
        )
    except NotFoundError:  # a topic that is not a tag (the store checks it, and says which)
        form.errors["topic"] = "Tick topics from the list."
        return _subscribe_page(context, form, 400)
    if requested is None:
        return _sent(address)  # asked often enough: no more emails to this address
    if context.outbox is not None:
        link = urls.confirm(confirm_token(context.secret, requested.consent_id))
        # the name is not in it: anyone may send the form for any address, and the
        # email would carry their words (a URL, an insult) to a stranger's inbox
        context.outbox.put(Confirmation(requested.email, None, tuple(form.newsletters), link))
    return _sent(address)


@blueprint.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> tuple[str, int]:
    context = _ready()
    assert context.factory is not None and context.secret is not None
    days = context.settings.web.confirm_days
    consent_id = read_confirm_token(context.secret, token, days * 86400)
    if request.method != "POST":  # a link checker's HEAD confirms nothing either
        with context.factory() as session:
            consent = session.get(Consent, consent_id)
            if consent is None:
                raise NotFoundError("There is no such subscription request any more.")
            check_unused(session, consent)
            tags = queries.tags_by_slug(session)
            # what confirming sets: each newsletter with its topics (none: every topic)
            choices = [
                (display_name(n), [tags[s].name for s in consent.choices[n] if s in tags])
                for n in sorted(consent.choices)
            ]
            subscriber = session.get(Subscriber, consent.subscriber_id)
            pending = subscriber is not None and subscriber.status is SubscriberStatus.PENDING
            active = subscriber is not None and subscriber.status is SubscriberStatus.ACTIVE
            # the name the request gave, shown before it is taken (anyone may send the
            # form); taken only by someone not yet subscribed: a known subscriber keeps
            # theirs (audience.subscribers.confirm), and is promised nothing else
            name = consent.name if pending else None
        page = render_template(
            "confirm.html", token=token, choices=choices, name=name, active=active
        )
        return page, 200
    confirmed = confirm_consent(context.factory, consent_id, _now())
    preferences = url_for(
        "subscriptions.preferences",
        token=preferences_token(context.secret, str(confirmed.id)),
    )
    return message_page(
        "You are subscribed",
        f"{confirmed.email} will receive "
        + ", ".join(display_name(c.newsletter) for c in confirmed.choices)
        + f" from {context.settings.site.title}.",
        200,
        links=[("Choose your newsletters and topics", preferences)],
    )


@blueprint.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> tuple[str, int]:
    context = _ready()
    assert context.factory is not None and context.secret is not None
    subscriber_id = read_preferences_token(context.secret, token)
    names = newsletter_names(context.settings)
    saved = request.method == "POST"
    with context.factory() as session:
        topics = [(t.slug, t.name) for t in queries.all_tags(session)]
    if saved:
        chosen = [n for n in request.form.getlist("newsletter") if n in names]
        choices = [Choice(n, tuple(request.form.getlist(f"topic-{n}"))) for n in chosen]
        known = {slug for slug, _ in topics}
        if any(not set(c.topics) <= known for c in choices):  # an old page, or made up
            return message_page(
                "Nothing was saved",
                "The form named a topic that is not on the list (any more). Open the page "
                "again and tick topics from the list.",
                400,
            )
        found = set_preferences(context.factory, context.settings, subscriber_id, choices, _now())
    else:
        found_or_none = profile(context.factory, subscriber_id)
        if found_or_none is None:
            raise NotFound(GONE)
        found = found_or_none
    receiving = {c.newsletter: set(c.topics) for c in found.choices}
    page = render_template(
        "preferences.html",
        token=token,
        subscriber=found,
        active=found.status is SubscriberStatus.ACTIVE,
        newsletters=names,
        receiving=receiving,
        topics=topics,
        saved=saved,
    )
    return page, 200


@blueprint.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> tuple[str, int] | Response:
    context = _ready()
    assert context.factory is not None and context.secret is not None
    link = read_unsubscribe_token(context.secret, token)
    what = display_name(link.newsletter) if link.newsletter else "every newsletter"
    if request.method != "POST":  # a link checker's HEAD unsubscribes no one either
        if profile(context.factory, link.subscriber_id) is None:
            raise NotFound(GONE)
        return render_template("unsubscribe.html", token=token, what=what), 200
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    address = leave(
        context.factory,
        link.subscriber_id,
        link.newsletter,
        _now(),
        detail="one-click" if one_click else "web page",
    )
    if address is None:
        raise NotFound(GONE)
    if one_click:
        # RFC 8058: the mail client shows nothing of the answer; no page, no redirect
        return Response("Unsubscribed.\n", 200, content_type="text/plain; charset=utf-8")
    return message_page(
        "Unsubscribed",
        f"{address} will get no more of {what} from {context.settings.site.title}.",
        200,
    )
