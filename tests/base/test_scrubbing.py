"""Secret redaction: which keys are secret, nesting, and the user's extensions."""

from __future__ import annotations

import pytest

from atoms_otel import REDACTED, Scrubber, ScrubbingOptions


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
    """Pathological nesting is bounded instead of exhausting the stack."""
    data: dict[str, object] = {}
    node = data
    for _ in range(5000):
        child: dict[str, object] = {}
        node["next"] = child
        node = child
    assert Scrubber().scrub_mapping(data) is data
