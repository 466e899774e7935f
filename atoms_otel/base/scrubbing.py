"""Redaction of secret-looking values in everything atoms_otel emits.

A key is secret-looking when one of its words — split on punctuation and camelCase, and joined in
pairs so ``api_key``, ``apiKey`` and ``x-api-key`` all read as ``apikey`` — is in the default word
list, or when one of the user's extra patterns matches it. Word matching keeps ``input_tokens``,
``session_id`` and ``author`` readable while ``access_token``, ``session_key`` and
``Authorization`` are redacted. Values under a secret key are replaced by :data:`REDACTED`, at any
depth of nested mappings, sequences, dataclasses and pydantic models; past :data:`MAX_DEPTH` the
value is replaced, never passed through.

Values are also recognised by their *format* in free text (:meth:`Scrubber.scrub_text`): JWTs,
``Bearer``/``Basic`` credentials, provider keys (``sk_live_…``, ``sk-…``, ``ghp_…``, ``xox…-``,
``AKIA…``), PEM private keys, URL user-info (``user:password@``) and ``key=value`` / ``key: value``
pairs whose key looks secret. :func:`encodable` makes any text UTF-8 encodable (a lone surrogate
becomes U+FFFD), so one bad character cannot lose a batch of telemetry.

Extend it with ``configure(scrubbing=ScrubbingOptions(extra_patterns=[...], callback=...))``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any, Final

__all__ = [
    "DEFAULT_SECRET_WORDS",
    "REDACTED",
    "Scrubber",
    "ScrubbingOptions",
    "active_scrubber",
    "encodable",
    "mask_url",
    "set_active_scrubber",
]

REDACTED: Final = "[REDACTED]"

DEFAULT_SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "apikeys",
        "authorization",
        "auth",
        "cookie",
        "cookies",
        "setcookie",
        "sessionkey",
        "privatekey",
        "secretkey",
        "accesskey",
        "signingkey",
        "creditcard",
        "cardnumber",
        "cvv",
        "cvc",
        "ssn",
        "credential",
        "credentials",
        "jwt",
        "bearer",
        "csrf",
        "xsrf",
        "clientsecret",
        "refreshtoken",
    }
)

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
MAX_DEPTH: Final = 20
"""Nesting deeper than this is not walked: the value there is replaced by :data:`REDACTED`."""

# Credential formats, recognised wherever they appear in text. One alternation, one pass.
_FORMATS: Final = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"
    r"|\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"  # JWT
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}"  # Stripe-style
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI/Anthropic-style
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|\bxox[abposre]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    re.DOTALL,
)
# A credential after Bearer/Basic has 8+ token characters, one of them a digit or a symbol, so
# ordinary prose ("basic example", "Bearer tokens expire") is left alone.
_BEARER: Final = re.compile(
    r"(?i)\b(bearer|basic)\s+(?=[A-Za-z0-9._~+/=\-]*[0-9._~+/=\-])[A-Za-z0-9._~+/=\-]{8,}"
)
_SCHEMES: Final = frozenset({"bearer", "basic"})
_SCHEME_VALUE: Final = re.compile(r"""\s+([^\s&,;"'<>]+)""")
_USERINFO: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@]+@")
_KEY_SEP: Final = re.compile(r"""([A-Za-z_][A-Za-z0-9_.\-]{0,40})["']?\s*[=:]\s*["']?""")
_PAIR_VALUE: Final = re.compile(r"""[^\s&,;"'<>]+""")
# Every default secret word contains one of these: text without any has no secret key=value pair.
_PAIR_HINTS: Final = (
    "pass", "pwd", "secret", "token", "key", "auth", "cookie", "card", "cvv", "cvc", "ssn", "credential",
    "jwt", "bearer", "csrf", "xsrf",
)  # fmt: skip
_HINTS: Final = re.compile(r"-----|eyJ|_live_|_test_|sk-|gh[pousr]_|github_pat_|xox|AKIA|ASIA")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so it always encodes as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``[REDACTED]@``."""
    return _USERINFO.sub(rf"\1{REDACTED}@", url) if "@" in url else url


@dataclass(frozen=True)
class ScrubbingOptions:
    """How atoms_otel redacts secrets. Pass ``scrubbing=False`` to configure() to turn it off."""

    extra_patterns: tuple[str, ...] = ()
    """Regular expressions searched (case-insensitively) in keys, in addition to the default words."""

    callback: Callable[[str, Any], Any] | None = None
    """Called as ``callback(key, value)`` for each value about to be redacted. Return ``None`` to
    redact it, or any other value to emit that value instead (for keys you know are safe)."""

    extra_words: frozenset[str] = field(default_factory=frozenset)
    """Whole words (lowercase, no separators) treated as secret, like the defaults."""


def _key_words(key: str) -> list[str]:
    words = [w.lower() for w in _WORDS.findall(key)]
    return words + [a + b for a, b in pairwise(words)]


class Scrubber:
    """Decides which keys are secret and redacts their values. Thread-safe; caches verdicts."""

    def __init__(self, options: ScrubbingOptions | None = None) -> None:
        options = options or ScrubbingOptions()
        self._words = DEFAULT_SECRET_WORDS | {w.lower() for w in options.extra_words}
        self._pattern = (
            re.compile("|".join(f"(?:{p})" for p in options.extra_patterns), re.IGNORECASE)
            if options.extra_patterns
            else None
        )
        self._callback = options.callback
        # With the user's own words or patterns any key may be secret: no shortcut then.
        self._any_key_may_be_secret = bool(options.extra_words or options.extra_patterns)
        self.is_secret_key = lru_cache(maxsize=4096)(self._is_secret_key)

    def _is_secret_key(self, key: str) -> bool:
        if any(word in self._words for word in _key_words(key)):
            return True
        return bool(self._pattern and self._pattern.search(key))

    def _redact(self, key: str, value: Any) -> Any:
        if self._callback is not None:
            try:
                kept = self._callback(key, value)
            except Exception:
                kept = None  # a broken callback must not leak the secret
            if kept is not None:
                return kept
        return REDACTED

    def scrub_text(self, text: str) -> str:
        """``text`` with every credential recognised by its format replaced by :data:`REDACTED`."""
        if _HINTS.search(text):
            text = _FORMATS.sub(REDACTED, text)
        if "earer" in text or "asic" in text:
            text = _BEARER.sub(rf"\1 {REDACTED}", text)
        if "@" in text:
            text = _USERINFO.sub(rf"\1{REDACTED}@", text)
        if ("=" in text or ":" in text) and self._may_have_pairs(text):
            text = self._redact_pairs(text)
        return text

    def _may_have_pairs(self, text: str) -> bool:
        if self._any_key_may_be_secret:
            return True
        lowered = text.lower()
        return any(hint in lowered for hint in _PAIR_HINTS)

    def _redact_pairs(self, text: str) -> str:
        spans = []
        for match in _KEY_SEP.finditer(text):
            if self.is_secret_key(match.group(1)):
                value = _PAIR_VALUE.match(text, match.end())
                if value is not None and value.group().lower() in _SCHEMES:
                    # "Authorization: Bearer <token>": keep the scheme, redact what follows it.
                    value = _SCHEME_VALUE.match(text, value.end())
                    if value is not None and value.group(1) != REDACTED:
                        spans.append(value.span(1))
                elif value is not None and value.group() != REDACTED:
                    spans.append(value.span())
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
        return text

    def scrub_mapping(self, mapping: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return ``mapping`` itself when nothing needs redacting, else a redacted copy."""
        return self._scrub_mapping(mapping, 0)

    def _scrub_mapping(self, mapping: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        result: dict[str, Any] | None = None
        for key, value in mapping.items():
            if isinstance(key, str) and self.is_secret_key(key):
                new = self._redact(key, value)
            else:
                new = self._scrub_nested(value, depth + 1)
            if new is not value:
                if result is None:
                    result = dict(mapping)
                result[key] = new
        return mapping if result is None else result

    def _scrub_nested(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, str | int | float | bytes):
            return value
        if depth > MAX_DEPTH:
            return REDACTED  # not walked, so not known to be safe
        if isinstance(value, Mapping):
            return self._scrub_mapping(value, depth)
        fields = _fields_of(value)
        if fields is not None:
            scrubbed = self._scrub_mapping(fields, depth)
            return value if scrubbed is fields else dict(scrubbed)
        if isinstance(value, list | tuple):
            items = [self._scrub_nested(v, depth + 1) for v in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                return tuple(items) if isinstance(value, tuple) else items
        return value

    def scrub_value(self, key: str, value: Any) -> Any:
        """Scrub one key/value pair: redacted if the key is secret, nested values scrubbed."""
        if self.is_secret_key(key):
            return self._redact(key, value)
        return self._scrub_nested(value, 0)

    def secret_keys(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if self.is_secret_key(k)]


def _fields_of(value: Any) -> dict[str, Any] | None:
    """A dataclass instance's or a pydantic model's fields as a dict; ``None`` for anything else."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    model_fields = getattr(type(value), "model_fields", None)
    if isinstance(model_fields, Mapping) and callable(getattr(value, "model_dump", None)):
        return {name: getattr(value, name, None) for name in model_fields}
    return None


_active: Scrubber | None = Scrubber()


def active_scrubber() -> Scrubber | None:
    """The scrubber configure() installed (a default one before configure; ``None`` when off)."""
    return _active


def set_active_scrubber(scrubber: Scrubber | None) -> None:
    global _active
    _active = scrubber
