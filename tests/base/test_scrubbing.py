"""Secret redaction: which keys are secret, nesting, and the user's extensions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from atoms_otel import REDACTED, Scrubber, ScrubbingOptions
from atoms_otel.base.scrubbing import MAX_DEPTH, encodable, mask_url


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refreshToken",
        "api_key",
        "apiKey",
        "x-api-key",
        "APIKey",
        "apikey",
        "Authorization",
        "http.request.header.authorization",
        "cookie",
        "set-cookie",
        "session_key",
        "sessionKey",
        "private_key",
        "credit_card",
        "creditCardNumber",
        "card_number",
        "cvv",
        "ssn",
        "jwt",
        "csrf_token",
        "aws_secret_access_key",
        "credentials",
    ],
)
def test_secret_looking_keys_are_redacted(key: str) -> None:
    """Each of these keys hides its value."""
    assert Scrubber().scrub_mapping({key: "hunter2"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        "session_id",
        "user_id",
        "correlation_id",
        "input_tokens",
        "max_tokens",
        "gen_ai.usage.output_tokens",
        "author",
        "passage",
        "tokenizer",
        "http.route",
        "keyboard",
        "secretary_name",
    ],
)
def test_ordinary_keys_are_kept(key: str) -> None:
    """Keys that merely contain a secret word's letters are not redacted."""
    assert Scrubber().scrub_mapping({key: "value"}) == {key: "value"}


def test_nested_structures_are_scrubbed_at_any_depth() -> None:
    """Mappings inside lists inside mappings are scrubbed; other values are untouched."""
    data = {
        "user": {"name": "ada", "credentials": {"x": 1}},
        "items": [{"token": "t", "n": 1}, ("a", {"pwd": "p"})],
    }
    assert Scrubber().scrub_mapping(data) == {
        "user": {"name": "ada", "credentials": REDACTED},
        "items": [{"token": REDACTED, "n": 1}, ("a", {"pwd": REDACTED})],
    }


def test_clean_mappings_are_returned_without_copying() -> None:
    """Nothing to redact: the very same object comes back (no allocation on the common path)."""
    data = {"a": 1, "b": {"c": [1, 2]}}
    assert Scrubber().scrub_mapping(data) is data


def test_extra_patterns_extend_the_defaults() -> None:
    """A user regex marks more keys as secret, case-insensitively."""
    scrubber = Scrubber(ScrubbingOptions(extra_patterns=(r"^tenant_pin$", "otp")))
    assert scrubber.scrub_mapping({"TENANT_PIN": "1234", "sms_otp_code": "9", "tenant": "acme"}) == {
        "TENANT_PIN": REDACTED,
        "sms_otp_code": REDACTED,
        "tenant": "acme",
    }


def test_callback_can_keep_a_value() -> None:
    """The callback sees each candidate and may return the value to emit instead of redacting."""
    seen: list[str] = []

    def allow_token_type(key: str, value: object) -> object:
        seen.append(key)
        return value if key == "token_type" else None

    scrubber = Scrubber(ScrubbingOptions(callback=allow_token_type))
    assert scrubber.scrub_mapping({"token_type": "bearer", "access_token": "abc"}) == {
        "token_type": "bearer",
        "access_token": REDACTED,
    }
    assert seen == ["token_type", "access_token"]


def test_a_failing_callback_still_redacts() -> None:
    """A broken callback must not leak the secret."""

    def broken(key: str, value: object) -> object:
        raise RuntimeError("bug")

    assert Scrubber(ScrubbingOptions(callback=broken)).scrub_mapping({"password": "p"}) == {
        "password": REDACTED
    }


def test_deeply_nested_input_does_not_recurse_forever() -> None:
    """Pathological nesting is bounded instead of exhausting the stack; the part too deep is replaced."""
    data: dict[str, object] = {}
    node = data
    for _ in range(5000):
        child: dict[str, object] = {}
        node["next"] = child
        node = child
    scrubbed = Scrubber().scrub_mapping(data)
    depth = 0
    walked: object = scrubbed
    while isinstance(walked, Mapping):
        walked, depth = walked["next"], depth + 1
    assert walked == REDACTED
    assert depth == MAX_DEPTH + 1


def test_a_secret_past_the_depth_limit_is_replaced_not_passed_through() -> None:
    """A password nested deeper than MAX_DEPTH does not survive scrubbing."""
    data: dict[str, object] = {"password": "hunter2"}
    for _ in range(MAX_DEPTH + 5):
        data = {"level": data}
    assert "hunter2" not in str(Scrubber().scrub_mapping(data))


@dataclass
class _Login:
    user: str
    password: str


class _Account(BaseModel):
    name: str
    api_key: str
    login: _Login | None = None


def test_dataclass_and_pydantic_fields_are_walked_like_dicts() -> None:
    """Secret fields of a dataclass or a pydantic model are redacted, not leaked through str()."""
    account = _Account(name="a", api_key="sk-abc", login=_Login("bob", "hunter2"))
    scrubbed = Scrubber().scrub_value("payload", {"who": account, "plain": _Login("x", "p4ss")})
    shown = str(scrubbed)
    assert "sk-abc" not in shown and "hunter2" not in shown and "p4ss" not in shown
    assert scrubbed["who"]["name"] == "a" and scrubbed["who"]["login"]["user"] == "bob"


def test_a_dataclass_without_secrets_is_kept_as_is() -> None:
    """Nothing to redact: the very same object is returned."""
    plain = {"point": _Point(1, 2)}
    assert Scrubber().scrub_mapping(plain) is plain


@dataclass
class _Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("failed with key sk_live_51HxxYyZzAaBbCcDd", "sk_live_51HxxYyZzAaBbCcDd"),
        ("openai sk-proj-abcdefghijklmnopqrstu rejected", "sk-proj-abcdefghijklmnopqrstu"),
        ("clone with ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
        ("header Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature", "eyJhbGciOiJIUzI1NiJ9"),
        ("login failed password=hunter2 for bob", "hunter2"),
        ("GET /cb?token=abc123&page=2", "abc123"),
        ("dsn postgres://bob:s3cret@db:5432/app", "s3cret"),
        (
            "key -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- end",
            "MIIEow",
        ),
    ],
)
def test_credentials_in_free_text_are_redacted_by_format(text: str, secret: str) -> None:
    """Each well-known credential format is replaced by the same [REDACTED] marker."""
    scrubbed = Scrubber().scrub_text(text)
    assert secret not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "GET /items?page=2 took 12 ms: input_tokens=40 skipped",
        "This is a basic example of Bearer tokens",
        "disk usage at 90%: ghost process found in Asia",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Text without credentials (prose mentioning basic/Bearer too) comes back unchanged."""
    assert Scrubber().scrub_text(text) == text


def test_an_authorization_pair_keeps_its_scheme_and_loses_the_credential() -> None:
    """'Authorization: Bearer x' becomes 'Authorization: Bearer [REDACTED]', however short x is."""
    assert Scrubber().scrub_text("Authorization: Bearer x") == "Authorization: Bearer [REDACTED]"
    assert Scrubber().scrub_text("auth=Basic Ym9iOnB3ZA==") == "auth=Basic [REDACTED]"


def test_lone_surrogates_become_replacement_characters() -> None:
    """encodable() turns a lone surrogate into U+FFFD and leaves valid text untouched."""
    assert encodable("a\ud800b") == "a\ufffdb"
    assert encodable("héllo") == "héllo"
    encodable("x\udfff").encode("utf-8")


def test_mask_url_hides_user_info() -> None:
    """user:password@ in a URL is masked; a URL without it is unchanged."""
    assert mask_url("https://bob:pw@collector:4318/v1") == "https://[REDACTED]@collector:4318/v1"
    assert mask_url("http://collector:4318") == "http://collector:4318"
