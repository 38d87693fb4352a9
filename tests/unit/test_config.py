"""config.yaml: every mistake names the key (and the line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import DATABASE_URL_ENV, load_settings, parse_settings
from publisher.errors import ConfigError

BASE = """\
site:
  title: T
  base_url: https://example.org
  postal_address: Street 1
email:
  sender: News <news@example.org>
"""


def parse(text: str, base_dir: Path = Path("/srv/site")):  # type: ignore[no-untyped-def]
    return parse_settings(text, source="config.yaml", base_dir=base_dir)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value


def test_defaults_are_filled_and_paths_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    settings = parse(BASE)
    assert settings.site.base_url == "https://example.org/"
    assert settings.database.url == "sqlite:////srv/site/publisher.db"
    assert settings.feeds.output_dir == Path("/srv/site/feeds")
    assert settings.web.host == "127.0.0.1"
    assert settings.email.smtp.port == 587


def test_relative_sqlite_url_is_beside_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    settings = parse(BASE + "database:\n  url: sqlite:///data/news.db\n")
    assert settings.database.url == "sqlite:////srv/site/data/news.db"


def test_environment_overrides_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://u@db/news")
    assert parse(BASE).database.url == "postgresql+psycopg://u@db/news"


def test_wrong_type_names_key_line_and_value() -> None:
    error = error_of(BASE + "  smtp:\n    port: abc\n")
    assert error.key == "email.smtp.port"
    assert error.line == 8
    assert str(error).startswith("config.yaml:8: email.smtp.port:")
    assert "'abc'" in str(error)


# YAML reads yes, no, on, off, true and false as booleans, which pydantic would
# take as the numbers 1 and 0 (``port: yes`` as port 1): a number is never read
# from one, whatever the field (an int or a float, optional or not); a number given
# as text still is.
@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("  smtp:\n    port: yes\n", "email.smtp.port"),
        ("  smtp:\n    timeout: off\n", "email.smtp.timeout"),
        ("  smtp:\n    rate_limit: true\n", "email.smtp.rate_limit"),
        ("feeds:\n  items: true\n", "feeds.items"),
    ],
)
def test_a_yes_or_no_is_no_number(extra: str, key: str) -> None:
    error = error_of(BASE + extra)
    assert error.key == key and error.line == 8
    assert "must be a number, got the yes/no value" in str(error)
    assert parse(BASE + "  smtp:\n    port: '2525'\n").email.smtp.port == 2525


def test_unknown_key_is_refused_with_the_choices() -> None:
    error = error_of(BASE + "feeds:\n  itmes: 10\n")
    assert error.key == "feeds.itmes"
    assert error.line == 8
    assert "unknown key" in str(error) and "items" in str(error)


# A required key typed wrong is named as the unknown key it is (with the right
# spelling among the choices), not as the key it should have been, "missing".
def test_a_required_key_typed_wrong_is_named_as_typed() -> None:
    error = error_of(BASE.replace("base_url:", "baseurl:"))
    assert error.key == "site.baseurl" and "unknown key" in str(error)
    assert "base_url" in str(error)


# A sender whose name has an unquoted comma, and a language written out, are config
# errors that say what to write.
def test_a_sender_name_with_a_comma_and_a_language_name_say_what_to_write() -> None:
    comma = error_of(BASE.replace("News <news@example.org>", "News, Berlin <news@example.org>"))
    assert comma.key == "email.sender" and 'double quotes: "News, Berlin" <…>' in str(comma)
    spelled = error_of(BASE.replace("  title: T\n", "  title: T\n  language: English\n"))
    assert spelled.key == "site.language" and "such as en, de or pt-BR" in str(spelled)
    assert parse(BASE.replace("  title: T\n", "  title: T\n  language: pt-BR\n"))


def test_missing_value_names_the_key() -> None:
    error = error_of("site:\n  title: T\n  base_url: https://x.org/\nemail:\n  sender: a@b.org\n")
    assert error.key == "site.postal_address"
    assert "required" in str(error)


def test_bad_values() -> None:
    assert error_of(BASE.replace("https://example.org", "example.org")).key == "site.base_url"
    zone = BASE.replace("email:", "  timezone: Mars/Olympus\nemail:")
    assert error_of(zone).key == "site.timezone"
    assert error_of(BASE.replace("news@example.org", "not an address")).key == "email.sender"
    schedule = error_of(BASE + "digests:\n  - name: weekly\n    schedule: every monday\n")
    assert schedule.key == "digests.0.schedule"
    assert "crontab" in str(schedule)


# A schedule that no day matches (31 February) would leave its newsletter unsent
# for ever, with `publisher run` running: refused as the config loads. 29 February
# comes, every fourth year.
def test_a_schedule_that_never_comes_is_refused() -> None:
    never = error_of(BASE + 'digests:\n  - name: yearly\n    schedule: "0 9 31 2 *"\n')
    assert (never.key, never.line) == ("digests.0.schedule", 9)
    assert "matches no day of any year" in str(never)
    leap = parse(BASE + 'digests:\n  - name: leap\n    schedule: "0 9 29 2 *"\n')
    assert leap.digests[0].schedule == "0 9 29 2 *"


# A DKIM key file that is not there, or holds no private key, is refused as the
# config loads, with its line (it stopped the send's renderer with a traceback).
def test_a_dkim_key_file_that_cannot_be_used_is_refused(tmp_path: Path) -> None:
    block = "  dkim:\n    key_file: {}\n    selector: news\n    domain: example.org\n"
    (tmp_path / "public.pem").write_text("-----BEGIN PUBLIC KEY-----\n")
    for name, why in (("gone.pem", "cannot read"), ("public.pem", "is not a PEM private key")):
        with pytest.raises(ConfigError) as info:
            parse(BASE + block.format(name), base_dir=tmp_path)
        assert (info.value.key, info.value.line) == ("email.dkim.key_file", 8)
        assert f"{tmp_path / name}" in str(info.value) and why in str(info.value)


def test_passwords_are_never_stored_in_the_file() -> None:
    error = error_of(BASE + "  smtp:\n    password: hunter2\n")
    assert error.key == "email"
    assert "environment variable" in str(error)
    assert "hunter2" not in str(error)


def test_yaml_syntax_error_names_the_line() -> None:
    error = error_of(BASE + "feeds: [\n")
    assert "not valid YAML" in str(error)
    assert error.line is not None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.yaml")


def test_shipped_config_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config.yaml")
    assert settings.site.title
    assert settings.digests


# URLs in the config are parsed and must be absolute http(s); each refusal
# names the file, the line and the key.
@pytest.mark.parametrize(
    ("extra", "key", "line"),
    [
        ("  logo: javascript:alert(1)\n", "site.logo", 5),
        ("  icon: data:image/png;base64,AAAA\n", "site.icon", 5),
        ("feeds:\n  url: not a url\n", "feeds.url", 8),
        ("feeds:\n  websub_hub: file:///etc/passwd\n", "feeds.websub_hub", 8),
        ("feeds:\n  websub_hub: https://\n", "feeds.websub_hub", 8),
        ("web:\n  public_url: ftp://example.org/\n", "web.public_url", 8),
    ],
)
def test_urls_must_be_http(extra: str, key: str, line: int) -> None:
    text = BASE.replace("email:", extra + "email:") if extra.startswith("  ") else BASE + extra
    error = error_of(text)
    assert (error.key, error.line) == (key, line)
    assert str(error).startswith(f"config.yaml:{line}: {key}: must be an absolute http(s) URL")


def test_base_url_with_a_space_is_refused() -> None:
    error = error_of(BASE.replace("https://example.org", "https://exa mple.org/"))
    assert (error.key, error.line) == ("site.base_url", 3)
    assert "space" in str(error)


def test_duplicate_keys_name_both_lines() -> None:
    error = error_of(BASE + "site:\n  title: Again\n")
    assert error.line == 7
    assert "'site' is written twice (lines 1 and 7)" in str(error)
    nested = error_of(BASE.replace("  title: T\n", "  title: T\n  title: U\n"))
    assert "'title' is written twice (lines 2 and 3)" in str(nested)


# A value that goes into a header is one line: a YAML block or an escaped
# CR LF in the site's title could otherwise add a Bcc: to every message.
@pytest.mark.parametrize(
    "title",
    ['"News\\r\\nBcc: victim@example.org"', "|\n    News\n    Bcc: x@example.org", '"A\\u2028B"'],
)
def test_header_values_are_one_line(title: str) -> None:
    error = error_of(BASE.replace("  title: T\n", f"  title: {title}\n"))
    assert (error.key, error.line) == ("site.title", 2)
    assert "must be one line" in str(error)


def test_the_postal_address_may_have_lines_but_no_controls() -> None:
    assert parse(BASE.replace("Street 1", "|\n    Street 1\n    Berlin")).site.postal_address
    error = error_of(BASE.replace("Street 1", '"Street\\x001"'))
    assert error.key == "site.postal_address"


DIGEST = BASE + 'digests:\n  - name: weekly\n    schedule: "0 9 * * MON"\n    subject: {}\n'


# The subject template is compiled (in the sandbox it runs in) when the
# config is loaded: a broken one is a config error with its line, not a failed send.
@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("'{{ site.title '", "not a valid Jinja2 template"),
        ("'{% if %}x'", "not a valid Jinja2 template"),
        ("'{{ sitee.title }}'", "uses sitee, which a subject does not have"),
        ("'{{ period_end | date }}'", "No filter named 'date'"),
        ("'{{ site.title is titled }}'", "No test named 'titled'"),
    ],
)
def test_a_broken_subject_template_is_a_config_error(subject: str, message: str) -> None:
    error = error_of(DIGEST.format(subject))
    assert (error.key, error.line) == ("digests.0.subject", 10)
    assert message in str(error)


def test_sizes_are_limited() -> None:
    assert error_of(BASE.replace("title: T", "title: " + "T" * 201)).key == "site.title"
    long_subject = DIGEST.format("'" + "x" * 501 + "'")
    assert error_of(long_subject).key == "digests.0.subject"
    assert error_of(BASE.replace("email:", "  language: not a language\nemail:")).key == (
        "site.language"
    )


TWO = (
    BASE
    + "  templates: mine\n"
    + 'digests:\n  - name: weekly\n    schedule: "0 9 * * MON"\n'
    + '  - name: monthly\n    schedule: "0 9 1 * *"\n{}'
)


# A newsletter's own templates are found where they will be read (the deployment's
# folder, then the shipped one); a name neither has is refused when the config is
# loaded, naming the file, the line and the key, and what is missing where.
def test_a_newsletter_names_templates_that_exist(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "monthly.html").write_text("{{ site.title }}")
    with pytest.raises(ConfigError) as info:
        parse(TWO.format("    template: monthly\n"), tmp_path)
    error = info.value
    assert (error.key, error.line) == ("digests.1.template", 13)
    assert str(error).startswith("config.yaml:13: digests.1.template: newsletter 'monthly'")
    assert "monthly.txt are not in " + str(tmp_path / "mine") in str(error)
    (tmp_path / "mine" / "monthly.txt").write_text("{{ site.title }}")
    settings = parse(TWO.format("    template: monthly\n    empty: note\n"), tmp_path)
    weekly, monthly = settings.digests
    assert (weekly.template, weekly.empty) == ("digest", "skip")
    assert (monthly.template, monthly.empty) == ("monthly", "note")
    assert settings.email.template_dirs[0] == tmp_path / "mine"


# A template name is a file name in the template folders, never a path; `empty` is one of
# its two words; the note's subject compiles like the digest's.
@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ("    template: ../../etc/passwd\n", "digests.1.template", "should match pattern"),
        ("    template: Monthly.html\n", "digests.1.template", "should match pattern"),
        ("    empty: sometimes\n", "digests.1.empty", "'skip' or 'note'"),
        ("    note_subject: '{{ posts }}'\n", "digests.1.note_subject", "uses posts"),
    ],
)
def test_newsletter_template_keys_are_checked(
    extra: str, key: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError) as info:
        parse(TWO.format(extra), tmp_path)
    error = info.value
    assert (error.key, error.line) == (key, 13)
    assert message in str(error)


# Two newsletters with one name: the second is refused at its line (it was listed by
# `schedule` and never sent: subscriptions and runs find a newsletter by its name).
def test_a_newsletter_name_given_twice_is_refused() -> None:
    error = error_of(
        BASE
        + "digests:\n"
        + '  - {name: weekly, schedule: "0 9 * * MON"}\n'
        + '  - {name: weekly, schedule: "0 9 * * FRI"}\n'
    )
    assert error.key == "digests.1.name" and error.line == 9
    assert "'weekly' is the name of digests.0 already" in str(error)


# A bad URL from the environment variable is named as coming from there, with its value.
def test_a_bad_database_url_from_the_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "nonsense")
    message = str(error_of(BASE))
    assert f"got 'nonsense' (from the environment variable {DATABASE_URL_ENV})" in message
    assert "got None" not in message


# A templates folder that is not there is refused (a typo fell back to the shipped
# templates without a word), as is a negative misfire_grace.
def test_a_missing_templates_folder_and_a_negative_grace_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        parse(BASE + "  templates: nowhere\n", tmp_path)
    assert missing.value.key == "email.templates" and "is not a folder" in str(missing.value)
    with pytest.raises(ConfigError) as web:
        parse(BASE + "web:\n  templates: nowhere\n", tmp_path)
    assert web.value.key == "web.templates"
    error = error_of(
        BASE + 'digests:\n  - {name: weekly, schedule: "0 9 * * MON", misfire_grace: -5}\n'
    )
    assert error.key == "digests.0.misfire_grace" and "zero or more" in str(error)


# The build owns its output folder (a manifest, a lock, a staging folder beside it):
# the filesystem's root is refused (a build walked all of it), and so is a file.
def test_the_feed_folder_is_a_folder_of_its_own(tmp_path: Path) -> None:
    error = error_of(BASE + "feeds:\n  output_dir: /\n")
    assert error.key == "feeds.output_dir" and "root or home folder" in str(error)
    (tmp_path / "config.yaml").write_text("")
    with pytest.raises(ConfigError) as file:
        parse(BASE + "feeds:\n  output_dir: config.yaml\n", tmp_path)
    assert "is a file, not a folder" in str(file.value)


# A config saved as UTF-16 (a Windows editor's "Unicode") is named so, not a codec's
# traceback words; an empty title "is empty".
def test_a_utf16_config_and_an_empty_title_say_so(tmp_path: Path) -> None:
    from publisher.config import load_settings

    path = tmp_path / "config.yaml"
    path.write_bytes(BASE.encode("utf-16"))
    with pytest.raises(ConfigError, match="is UTF-16; save the file as UTF-8"):
        load_settings(path)
    assert "site.title: is empty" in str(error_of(BASE.replace("title: T", 'title: ""')))
