"""Email addresses: the one validator, used by the config, the CLI, CSV imports,
the web forms and the message encoder alike.

Built on ``email-validator`` (syntax only, no DNS lookups). An address is
normalised once, at the way in: the domain lower-cased and written in IDNA
(``bücher.de`` → ``xn--bcher-kva.de``), so every later step deals in plain
ASCII. A non-ASCII local part (``zoë@example.org``) needs SMTPUTF8 (RFC 6531)
end to end, which the sender does not use: such an address is refused at the
door, with a reason, rather than failing in the middle of a send.
"""

from __future__ import annotations

from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from .errors import AddressError


def normalise_address(text: str) -> str:
    """The addr-spec ``text`` stands for, ready for SMTP; :class:`AddressError` if none.

    >>> normalise_address(" Zoe@Bücher.DE ")
    'Zoe@xn--bcher-kva.de'
    """
    candidate = text.strip()
    if not candidate:
        raise AddressError(text, "is empty; write it as name@example.org")
    if any(ord(c) < 32 or c == "\x7f" for c in candidate):
        raise AddressError(text, "contains a control character or line break")
    try:
        valid = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        raise AddressError(text, str(e).rstrip(".")) from e
    ascii_email = valid.ascii_email
    assert ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return ascii_email


def parse_mailbox(text: str) -> tuple[str, str]:
    """``News <news@example.org>`` → ``("News", "news@example.org")``, the address normalised."""
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise AddressError(text, "contains a control character or line break")
    display, address = parseaddr(text)
    if not address:
        raise AddressError(text, "must be an email address such as 'News <news@example.org>'")
    return " ".join(display.split()), normalise_address(address)
