"""Email addresses: the one validator, used by the config, the CLI, CSV imports,
the web forms and the message encoder alike.

Built on ``email-validator`` (syntax only, no DNS lookups). An address is
normalised once, at the way in: the domain lower-cased and written in IDNA
(``bücher.de`` → ``xn--bcher-kva.de``), so every later step deals in plain
ASCII. A non-ASCII local part (``zoë@example.org``) needs SMTPUTF8 (RFC 6531)
end to end, which the sender does not use: such an address is refused at the
door, with a reason, rather than failing in the middle of a send.

Most addresses are plain ASCII: a dot-atom local part and a domain of
letters, digits and hyphens. Those are checked by one regular expression
(a few microseconds, where email-validator's per-character IDNA checks take
~90; a CSV import of 100,000 rows would spend 9 s on them); everything else,
and anything the expression is unsure of, goes to email-validator.
``tests/unit/test_addresses.py`` holds the two to the same answers.

email-validator is imported on the first address the expression leaves to it:
loading it compiles its grammar (~20 ms), which every command reading the
config's plain sender address would otherwise pay.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from .errors import AddressError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: an address email-validator accepts unchanged but for the domain's case (RFC 5322
#: dot-atom; LDH labels; an alphabetic top-level domain); labels with "--" (Punycode
#: and its look-alikes) are left to email-validator
_PLAIN = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
#: email-validator's ``SPECIAL_USE_DOMAIN_NAMES`` (the special-use names it refuses,
#: RFC 6761), without importing it; the test suite checks they are the same
SPECIAL_USE_DOMAIN_NAMES = ("arpa", "invalid", "local", "localhost", "onion", "test")
#: what a domain ends with when it is, or is under, a special-use name
_SPECIAL_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


def _plain(candidate: str) -> str | None:
    """``candidate`` normalised, if it is a plain ASCII address; None to ask email-validator."""
    match = _PLAIN.fullmatch(candidate)
    if match is None:
        return None
    local, domain = match.group(1), "." + match.group(2).lower()
    if len(local) > 64 or len(candidate) > 254 or "--" in domain:
        return None
    if domain.endswith(_SPECIAL_SUFFIXES):
        return None
    return f"{local}@{domain[1:]}"


def normalise_address(text: str) -> str:
    """The addr-spec ``text`` stands for, ready for SMTP; :class:`AddressError` if none.

    >>> normalise_address(" Zoe@Bücher.DE ")
    'Zoe@xn--bcher-kva.de'
    """
    candidate = text.strip()
    if not candidate:
        raise AddressError(text, "is empty; write it as name@example.org")
    if _CONTROL.search(candidate):
        raise AddressError(text, "contains a control character or line break")
    plain = _plain(candidate)
    if plain is not None:
        return plain
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        raise AddressError(text, str(e).rstrip(".")) from e
    ascii_email = valid.ascii_email
    assert ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return ascii_email


def parse_mailbox(text: str) -> tuple[str, str]:
    """``News <news@example.org>`` → ``("News", "news@example.org")``, the address normalised."""
    if _CONTROL.search(text):
        raise AddressError(text, "contains a control character or line break")
    display, address = parseaddr(text)
    if not address:
        raise AddressError(text, "must be an email address such as 'News <news@example.org>'")
    return " ".join(display.split()), normalise_address(address)
