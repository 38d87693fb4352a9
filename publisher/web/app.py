"""The Flask application factory: :func:`create_app`.

One app, three blueprints (:mod:`.feeds`, :mod:`.subscriptions`,
:mod:`.preview`), one page shell (``templates/base.html``, autoescaped like
every ``.html`` template). Templates are looked up in the deployment's
``web.templates`` folder first, then in the ones shipped in the package,
as the email templates are.

Every HTML page carries the security headers a page facing the internet
needs (``Content-Security-Policy``, ``X-Frame-Options``,
``Referrer-Policy``; every response ``X-Content-Type-Options``). A page
that needs another policy (the preview, a digest's web version) sets its
own before the defaults are added.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from flask import Flask, current_app, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from .. import db
from ..config import Settings
from ..errors import BadToken, NotFound, PublisherError, SubscriptionError
from .folder import FeedFolder
from .throttle import Throttle

if TYPE_CHECKING:
    from .confirmation import Outbox

#: the web pages' own templates (shipped inside the package)
TEMPLATES = Path(__file__).parent / "templates"

#: pages of this app: nothing but our own stylesheet and images, no scripts, no framing.
#: The unsubscribe links carry a token, so no Referer may take it to another site.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: an email's HTML (the preview's frames, a digest's web version): inline
#: styles (premailer puts them there) and remote images, still no script
EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)


@dataclass(frozen=True)
class WebContext:
    """What the blueprints need, set once by :func:`create_app`."""

    settings: Settings
    #: the store; None serves the feed folder only
    factory: sessionmaker[Session] | None
    #: the key that signs links; None answers 503 on the subscription pages
    secret: str | None
    folder: FeedFolder
    #: subscribe requests per client address
    throttle: Throttle
    #: where confirmation emails wait for SMTP (None without store and key)
    outbox: Outbox | None
    #: pages rendered once and reused, by name (see ``subscriptions._sent``)
    pages: dict[str, list[str]] = field(default_factory=dict)


def web_context() -> WebContext:
    """The :class:`WebContext` of the app handling this request."""
    context = current_app.extensions["publisher"]
    assert isinstance(context, WebContext)
    return context


def template_dirs(settings: Settings) -> list[Path]:
    """Where the web templates are looked up: the deployment's folder first, then ours."""
    override = settings.web.templates
    return [override, TEMPLATES] if override else [TEMPLATES]


def create_app(
    settings: Settings,
    factory: sessionmaker[Session] | None = None,
    secret: str | None = None,
    *,
    feeds: bool = True,
    preview: Any = None,
    outbox: Outbox | None = None,
) -> Flask:
    """The WSGI application.

    :param settings: the deployment's settings.
    :param factory: the store; without it only the feed folder is served.
    :param secret: the key that signs links (``web.secret_key_env``); without it
        the subscription pages answer 503.
    :param feeds: serve the feed folder, the index and the subscription pages.
    :param preview: a :class:`~publisher.web.preview.PreviewSource` to serve
        the staff preview of the digest at ``/`` instead.
    :param outbox: where confirmation emails go (default: SMTP per ``email.smtp``).
    """
    app = Flask(__name__, static_folder="static", template_folder=None)
    app.jinja_loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(d)) for d in template_dirs(settings)]
    )
    app.jinja_env.undefined = jinja2.StrictUndefined
    web = settings.web
    app.config.update(
        # Flask's session cookie carries nothing but the form's CSRF token
        SECRET_KEY=secret or secrets.token_hex(32),
        SESSION_COOKIE_SECURE=web.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=web.max_request_body_kb * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session cookie
    )
    if outbox is None and feeds and factory is not None and secret:
        from .confirmation import Outbox

        outbox = Outbox(settings)
    app.extensions["publisher"] = WebContext(
        settings,
        factory,
        secret,
        FeedFolder(settings.feeds.output_dir),
        Throttle(web.subscribe_limit_per_client),
        outbox,
    )
    csrf = CSRFProtect(app)

    @app.context_processor
    def _site() -> dict[str, Any]:
        return {"site": settings.site}

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            if request.blueprint == "subscriptions":
                # a subscriber's page (their address, their choices, a form's token):
                # kept by no browser cache or proxy, shown again only by asking again
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> tuple[str, int]:
        return message_page(
            "This form has expired",
            "The form was sent without the token that shows it came from this site "
            "(or your browser keeps no cookies for it). Open the page again and send "
            "the form from there.",
            400,
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        if error.code is None or error.code < 400:
            return error
        page, code = message_page(error.name, error.description or "", error.code)
        # the exception's own headers kept: Allow on a 405 (RFC 9110 §15.5.6), Retry-After
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return page, code, headers

    @app.errorhandler(BadToken)
    def _bad_token(error: BadToken) -> tuple[str, int]:
        return message_page("This link cannot be used", str(error), 400, links=_subscribe_link())

    @app.errorhandler(SubscriptionError)
    def _subscription_error(error: SubscriptionError) -> tuple[str, int]:
        return message_page(
            "Nothing to change",
            f"{error.address} receives no newsletter now ({error.status}). To receive one "
            "again, subscribe on the subscribe page: a confirmation link is emailed.",
            409,
            links=_subscribe_link(),
        )

    @app.errorhandler(NotFound)
    def _not_found(error: NotFound) -> tuple[str, int]:
        return message_page("Not found", str(error), 404)

    @app.errorhandler(PublisherError)
    def _publisher_error(error: PublisherError) -> tuple[str, int]:
        return message_page("Something is wrong", str(error), 400)

    if feeds:
        from .feeds import blueprint as feeds_blueprint
        from .subscriptions import blueprint as subscriptions_blueprint

        app.register_blueprint(feeds_blueprint)
        app.register_blueprint(subscriptions_blueprint)
        csrf.exempt("publisher.web.subscriptions.unsubscribe")
    if preview is not None:
        from .preview import make_blueprint

        app.register_blueprint(make_blueprint(preview))

    if web.trusted_proxies:
        hops = web.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )
    return app


def public_app(settings: Settings) -> Flask:
    """The public app of a deployment (feeds, index, subscription pages), as
    ``publisher serve`` and :mod:`publisher.web.wsgi` run it.

    On SQLite its engine flushes the log at checkpoints, not per commit
    (:func:`publisher.db.make_engine`), and it has one connection, which the
    threads take turns with.

    :raises DatabaseError: when the database's schema is not this version's.
    """
    url = settings.database.url or ""
    # SQLite: the server's threads take turns with one connection. SQLite writes one
    # transaction at a time anyway; waiting for the connection is waiting on a lock
    # (never in SQLite's busy handler, which sleeps 1 to 100 ms between tries); and one
    # connection keeps its page cache (a connection another one wrote behind re-reads
    # the pages it needs: 29 reads of the file per subscribe request with five)
    one: dict[str, Any] = {"pool_size": 1, "max_overflow": 0} if url.startswith("sqlite") else {}
    engine = db.make_engine(url, flush_at_checkpoints=True, **one)
    db.check_schema(engine)
    return create_app(settings, db.make_sessionmaker(engine), settings.web.secret_key)


def finish_sending(app: Flask, timeout: float) -> int:
    """After serving: wait up to ``timeout`` seconds for the confirmation emails
    still queued; how many were not sent by then. Then close the store's
    connections (on SQLite the last one writes the log back into the database file)."""
    context: WebContext = app.extensions["publisher"]
    left = 0 if context.outbox is None else context.outbox.join(timeout)
    if context.factory is not None:
        bind = context.factory.kw.get("bind")
        if bind is not None:
            bind.dispose()
    return left


def message_page(
    title: str,
    message: str,
    status: int = 200,
    hint: str = "",
    links: Sequence[tuple[str, str]] = (),
) -> tuple[str, int]:
    """A page that says one thing (a result, or what went wrong and what to do).

    :param links: (label, URL) of the pages to go on to.
    """
    page = render_template("message.html", title=title, message=message, hint=hint, links=links)
    return page, status


def _subscribe_link() -> list[tuple[str, str]]:
    if "subscriptions.subscribe" not in current_app.view_functions:
        return []
    return [("Go to the subscribe page", url_for("subscriptions.subscribe"))]
