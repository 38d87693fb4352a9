"""A subscriber's name as given: one line, kept as written, safe wherever it is shown."""

from __future__ import annotations

import pytest

from publisher.audience.names import MAX_NAME, tidy_name
from publisher.errors import NameRefused


# Invariant: a name is one line of its own words: white space runs become one space,
# and the bidirectional embeddings, overrides and isolates that would make the text
# after it read backwards (on the confirmation page, in a greeting) are dropped; the
# letters of any script stay as written.
@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("  Zoë \n Müller ", "Zoë Müller"),
        ("Victim \u202eegap siht", "Victim egap siht"),
        ("\u2067שרה\u2069 Cohen", "שרה Cohen"),
        ("محمد \u202bعلي\u202c", "محمد علي"),
        ("\u202e", None),
        ("", None),
    ],
)
def test_a_name_is_one_line_without_bidi_controls(given: str, kept: str | None) -> None:
    assert tidy_name(given) == kept


def test_control_characters_and_long_names_are_refused() -> None:
    with pytest.raises(NameRefused, match="control characters"):
        tidy_name("a\x1b[31mb")
    with pytest.raises(NameRefused) as info:
        tidy_name("x" * (MAX_NAME + 1))
    assert info.value.length == MAX_NAME + 1
