"""Wrap a function of any kind — sync, async, generator, async generator — around a probe.

A :class:`Probe` is told when a call starts, and whether it returned, raised or was closed. The
wrapper keeps the function's name, docstring, signature and kind (``inspect.iscoroutinefunction``
and friends still answer the same), re-raises the function's exception unchanged, and makes the
probe's OpenTelemetry context current only while the function's own code runs: between two items
of a generator the caller's context is current again, so the caller's spans and log lines are not
attributed to the tool. The first call of any wrapped function before ``configure()`` configures
atoms_otel with the defaults (:mod:`atoms_otel.base.first_use`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from atoms_otel.base import first_use

__all__ = ["Call", "Probe", "wrap"]

F = TypeVar("F", bound=Callable[..., Any])


class Call(Protocol):
    """One call in progress."""

    context: Context | None
    """Made current while the function runs (``None``: leave the context alone)."""


C = TypeVar("C", bound=Call)


class Probe(Protocol[C]):
    """What a decorator observes. ``done``/``fail`` must not raise (they guard themselves)."""

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> C: ...

    def done(self, call: C, result: Any) -> None: ...

    def fail(self, call: C, exc: BaseException) -> None: ...


def wrap(fn: F, probe: Probe[Any]) -> F:
    """The wrapper for ``fn``'s kind."""
    if inspect.isasyncgenfunction(fn):
        return cast(F, functools.wraps(fn)(_async_generator(fn, probe)))
    if inspect.isgeneratorfunction(fn):
        return cast(F, functools.wraps(fn)(_generator(fn, probe)))
    if inspect.iscoroutinefunction(fn):
        return cast(F, functools.wraps(fn)(_coroutine(fn, probe)))
    return cast(F, functools.wraps(fn)(_function(fn, probe)))


def _function(fn: Callable[..., Any], probe: Probe[Any]) -> Callable[..., Any]:
    attach, detach = otel_context.attach, otel_context.detach

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if first_use.pending:
            first_use.run()
        call = probe.start(args, kwargs)
        token = attach(call.context) if call.context is not None else None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            probe.fail(call, exc)
            raise
        else:
            probe.done(call, result)
            return result
        finally:
            if token is not None:
                detach(token)

    return wrapper


def _coroutine(fn: Callable[..., Any], probe: Probe[Any]) -> Callable[..., Any]:
    attach, detach = otel_context.attach, otel_context.detach

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if first_use.pending:
            first_use.run()
        call = probe.start(args, kwargs)
        token = attach(call.context) if call.context is not None else None
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            probe.fail(call, exc)
            raise
        else:
            probe.done(call, result)
            return result
        finally:
            if token is not None:
                detach(token)

    return wrapper


def _generator(fn: Callable[..., Any], probe: Probe[Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        generator: Generator[Any, Any, Any] = fn(*args, **kwargs)
        if first_use.pending:
            first_use.run()
        call = probe.start(args, kwargs)
        count = 0
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = otel_context.attach(call.context) if call.context is not None else None
            try:
                item = generator.send(sent) if thrown is None else generator.throw(thrown)
            except StopIteration as stop:
                probe.done(call, _Yielded(count, stop.value))
                return stop.value
            except BaseException as exc:
                probe.fail(call, exc)
                raise
            finally:
                if token is not None:
                    otel_context.detach(token)
            count += 1
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:  # the caller stopped early: a normal end
                generator.close()
                probe.done(call, _Yielded(count, None))
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper


def _async_generator(fn: Callable[..., Any], probe: Probe[Any]) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        generator: AsyncGenerator[Any, Any] = fn(*args, **kwargs)
        if first_use.pending:
            first_use.run()
        call = probe.start(args, kwargs)
        count = 0
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = otel_context.attach(call.context) if call.context is not None else None
            try:
                item = await (generator.asend(sent) if thrown is None else generator.athrow(thrown))
            except StopAsyncIteration:
                probe.done(call, _Yielded(count, None))
                return
            except BaseException as exc:
                probe.fail(call, exc)
                raise
            finally:
                if token is not None:
                    otel_context.detach(token)
            count += 1
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                await generator.aclose()
                probe.done(call, _Yielded(count, None))
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper


class _Yielded:
    """What a generator "returned": how many items it produced, and its return value."""

    __slots__ = ("items", "value")

    def __init__(self, items: int, value: Any) -> None:
        self.items = items
        self.value = value

    def __repr__(self) -> str:
        return f"<generator: {self.items} items>"


def yielded_items(result: Any) -> int | None:
    """The number of items, when ``result`` is what a wrapped generator reported."""
    return result.items if isinstance(result, _Yielded) else None
