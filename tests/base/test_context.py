"""LogContext and the context variables: nesting, restoring, isolation per task and thread."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import threading

import opentelemetry.semconv._incubating.attributes as incubating
import opentelemetry.semconv.attributes as stable
import pytest

from atoms_otel import (
    LogContext,
    clear_context,
    current_context,
    get_correlation_id,
    get_session_id,
    get_user_id,
    set_user_id,
)
from atoms_otel.base.context import CONTEXT_ATTRIBUTES, CORRELATION_ID_ATTRIBUTE, new_correlation_id


@pytest.fixture(autouse=True)
def _clean() -> None:
    clear_context()


def test_sets_values_inside_and_restores_outside() -> None:
    """Values are visible inside the block and gone after it."""
    with LogContext(user_id="u1", correlation_id="c1", session_id="s1"):
        assert (get_user_id(), get_correlation_id(), get_session_id()) == ("u1", "c1", "s1")
    assert (get_user_id(), get_correlation_id(), get_session_id()) == (None, None, None)


def test_nested_contexts_override_and_restore() -> None:
    """An inner context overrides only what it sets; the outer values come back on exit."""
    with LogContext(user_id="outer", correlation_id="c1", tenant="acme"):
        with LogContext(user_id="inner", region="eu"):
            assert current_context() == {
                "correlation_id": "c1",
                "user_id": "inner",
                "tenant": "acme",
                "region": "eu",
            }
        assert current_context() == {"correlation_id": "c1", "user_id": "outer", "tenant": "acme"}


def test_restores_after_an_exception() -> None:
    """The exception propagates unchanged and the context is still restored."""
    with pytest.raises(KeyError), LogContext(user_id="u1"):
        raise KeyError("boom")
    assert get_user_id() is None


async def test_works_as_an_async_context_manager() -> None:
    """``async with`` behaves like ``with``."""
    async with LogContext(session_id="s9"):
        assert get_session_id() == "s9"
    assert get_session_id() is None


async def test_concurrent_tasks_are_isolated() -> None:
    """Each task sees only its own context, even when they interleave."""
    seen: dict[str, str | None] = {}

    async def handle(user: str) -> None:
        async with LogContext(user_id=user):
            await asyncio.sleep(0.01)
            seen[user] = get_user_id()

    await asyncio.gather(*(handle(f"user{i}") for i in range(20)))
    assert seen == {f"user{i}": f"user{i}" for i in range(20)}


def test_threads_are_isolated() -> None:
    """A value set in one thread is not visible in another."""
    set_user_id("main-thread")
    seen: list[str | None] = []
    thread = threading.Thread(target=lambda: seen.append(get_user_id()))
    thread.start()
    thread.join()
    assert seen == [None] and get_user_id() == "main-thread"


def test_an_active_context_cannot_be_entered_twice() -> None:
    """Re-entering the same object while active is a programming error, reported clearly."""
    context = LogContext(user_id="u1")
    with context, pytest.raises(RuntimeError, match="already active"), context:
        pass


def test_a_context_object_can_be_reused_after_exit() -> None:
    """The same object can be entered again once it has exited."""
    context = LogContext(user_id="again")
    for _ in range(2):
        with context:
            assert get_user_id() == "again"
        assert get_user_id() is None


def test_new_correlation_ids_are_unique_hex() -> None:
    """Generated correlation ids are 32 hex characters and do not repeat."""
    ids = {new_correlation_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def _semconv_attribute_names() -> set[str]:
    names: set[str] = set()
    for package in (stable, incubating):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            names.update(value for value in vars(module).values() if isinstance(value, str))
    return names


def test_context_attribute_names_are_semconv_or_namespaced() -> None:
    """Each context value's span/log attribute is a semantic-convention name from the installed
    package, or lives in the ``atoms.`` namespace when the conventions have none."""
    known = _semconv_attribute_names()
    assert {"user.id", "session.id", "url.path"} <= known  # the check sees the conventions
    for _field, attribute, _var in CONTEXT_ATTRIBUTES:
        assert attribute in known or attribute.startswith("atoms."), attribute
    assert CORRELATION_ID_ATTRIBUTE == "atoms.correlation_id" and CORRELATION_ID_ATTRIBUTE not in known
