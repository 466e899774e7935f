"""The SIGTERM flush handler: installed only over the default action, never over the app's own."""

from __future__ import annotations

import io
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from atoms_otel import AdvancedOptions, configure, shutdown
from atoms_otel.core.lifecycle import sigterm_flush_installed


@pytest.fixture
def default_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        shutdown()
        signal.signal(signal.SIGTERM, previous)


def _app_handler(signum: int, frame: FrameType | None) -> None:
    """Stands for a handler the application set itself."""


@pytest.mark.usefixtures("default_sigterm")
def test_configure_installs_the_flush_handler_over_the_default_action() -> None:
    """With SIGTERM at its default action, configure() in the main thread installs the flush."""
    configure(advanced=AdvancedOptions(log_stream=io.StringIO()))
    assert sigterm_flush_installed()


@pytest.mark.usefixtures("default_sigterm")
def test_an_applications_own_sigterm_handler_is_never_replaced() -> None:
    """A handler the application set is left alone."""
    signal.signal(signal.SIGTERM, _app_handler)
    configure(advanced=AdvancedOptions(log_stream=io.StringIO()))
    assert signal.getsignal(signal.SIGTERM) is _app_handler


@pytest.mark.usefixtures("default_sigterm")
def test_flush_on_sigterm_can_be_turned_off() -> None:
    """``AdvancedOptions(flush_on_sigterm=False)`` leaves SIGTERM alone."""
    configure(advanced=AdvancedOptions(log_stream=io.StringIO(), flush_on_sigterm=False))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
