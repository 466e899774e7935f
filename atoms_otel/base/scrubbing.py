"""Redaction of secret-looking values in everything atoms_otel emits.

A key is secret-looking when one of its words — split on punctuation and camelCase, and joined in
pairs so ``api_key``, ``apiKey`` and ``x-api-key`` all read as ``apikey`` — is in the default word
list, or when one of the user's extra patterns matches it. Word matching keeps ``input_tokens``,
``session_id`` and ``author`` readable while ``access_token``, ``session_key`` and
``Authorization`` are redacted. Values under a secret key are replaced by :data:`REDACTED`, at any
depth of nested mappings and sequences.

Extend it with ``configure(scrubbing=ScrubbingOptions(extra_patterns=[...], callback=...))``.
"""

from __future__ import annotations

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
_MAX_DEPTH: Final = 20


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
        if depth > _MAX_DEPTH:
            return value
        if isinstance(value, Mapping):
            return self._scrub_mapping(value, depth)
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


_active: Scrubber | None = Scrubber()


def active_scrubber() -> Scrubber | None:
    """The scrubber configure() installed (a default one before configure; ``None`` when off)."""
    return _active


def set_active_scrubber(scrubber: Scrubber | None) -> None:
    global _active
    _active = scrubber
