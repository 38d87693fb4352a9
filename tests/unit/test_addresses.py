"""The one address validator: its fast path for plain ASCII addresses gives exactly
email-validator's answers."""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from publisher.addresses import _plain, normalise_address
from publisher.errors import AddressError

LOCAL = "aZ09.-_+!'~.ü"
LABEL = "abZ09-x-n"


def full(candidate: str) -> str | None:
    try:
        valid = validate_email(candidate, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return valid.ascii_email


def corpus() -> list[str]:
    rng = random.Random(9)
    made = [
        "a@b.co",
        "A.B@Example.ORG",
        "a@b-c.com",
        "a@b-.com",
        "a@-b.com",
        "a@ab--c.com",
        "a@xn--bcher-kva.de",
        "a@localhost.test",
        "a@x.local",
        "a@b.onion",
        "a@b.c0m",
        ".a@b.com",
        "a.@b.com",
        "a..b@b.com",
        "a@b..com",
        "a@" + "x" * 64 + ".com",
        "a@" + "x" * 63 + ".com",
        "x" * 65 + "@b.com",
        "x" * 64 + "@b.com",
        "a@" + ".".join(["abcdefghi"] * 25) + ".com",
        "o'neil+news@example.co.uk",
    ]
    for _ in range(20000):
        local = "".join(rng.choice(LOCAL) for _ in range(rng.randint(1, 8)))
        labels = [
            "".join(rng.choice(LABEL) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 3))
        ]
        tld = rng.choice(["org", "DE", "c0m", "a", "t-st", "test", "local", "x1"])
        made.append(f"{local}@{'.'.join(labels)}.{tld}")
    return made


# The fast path refuses the names email-validator refuses (it keeps its own copy,
# so that reading a plain address does not load email-validator).
def test_fast_path_knows_email_validators_special_use_names() -> None:
    import email_validator

    from publisher.addresses import SPECIAL_USE_DOMAIN_NAMES

    assert list(SPECIAL_USE_DOMAIN_NAMES) == email_validator.SPECIAL_USE_DOMAIN_NAMES


# Whatever the fast path accepts, email-validator accepts too, and normalises the same.
def test_fast_path_agrees_with_email_validator() -> None:
    accepted = 0
    for candidate in corpus():
        fast = _plain(candidate)
        if fast is not None:
            accepted += 1
            assert fast == full(candidate), candidate
    assert accepted > 500, "the corpus exercises the fast path"


@pytest.mark.parametrize("bad", ["a@b-.com", "x@localhost.test", "no-at-sign", "a@b@c.org"])
def test_refused_addresses_say_why(bad: str) -> None:
    with pytest.raises(AddressError) as refused:
        normalise_address(bad)
    assert refused.value.address == bad and refused.value.why
