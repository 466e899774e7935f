"""The Telemetry handle: one object that follows re-configuration, runs plugin tasks, hides secrets."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator

import pytest

import atoms_otel
from atoms_otel import AdvancedOptions, Event, Telemetry
from atoms_otel.base import guard as _guard
from atoms_otel.core.configure import configure as configure_handle

SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    atoms_otel.shutdown()


def _quiet() -> AdvancedOptions:
    return AdvancedOptions(log_stream=io.StringIO())


def test_configure_again_fills_the_same_handle_with_the_new_settings() -> None:
    """Whatever holds the handle (middleware, plugins, routers) sees the new configuration."""
    first = atoms_otel.configure(service_name="first", advanced=_quiet())
    pipeline = first.pipeline
    second = atoms_otel.configure(service_name="second", advanced=_quiet())
    assert second is first and first.settings.service_name == "second"
    assert first.pipeline is not pipeline and first.pipeline is not None


def test_an_unconfigured_handle_reads_the_table_defaults() -> None:
    """Before configure(): not configured, disabled, the defaults' settings, no plugins."""
    telemetry = Telemetry()
    assert not telemetry.configured and not telemetry.enabled
    assert telemetry.settings.slow_request_ms == 1000.0 and telemetry.plugins == []
    assert telemetry.metrics_text() == b"" and telemetry.metrics_snapshot() is None
    assert repr(telemetry) == "Telemetry(configured=False)"


def test_repr_never_shows_a_secret() -> None:
    """The token, the webhook secret and OTLP header values are not in repr() or str()."""
    telemetry = atoms_otel.configure(
        service_name="svc",
        api_token="tok-abcdef",
        webhook_secret=SECRET,
        otlp_headers={"authorization": "Bearer hunter2"},
        advanced=_quiet(),
    )
    shown = repr(telemetry) + str(telemetry) + repr(telemetry.settings)
    for secret in ("tok-abcdef", SECRET, "hunter2"):
        assert secret not in shown
    assert "service_name='svc'" in shown


def test_retiring_a_configuration_drops_its_subscribers() -> None:
    """Subscribers of one configuration do not hear the next one's events."""
    telemetry = atoms_otel.configure(advanced=_quiet())
    heard: list[str] = []
    telemetry.events.subscribe("", lambda e: heard.append(e.kind))
    atoms_otel.configure(advanced=_quiet())
    telemetry.events.publish(Event("after"))
    assert heard == []


class _Ticker:
    """A plugin that owns a background task."""

    def __init__(self) -> None:
        self.ticks = 0
        self.cancelled = False

    def setup(self, telemetry: Telemetry) -> None:
        pass

    def shutdown(self) -> None:
        pass

    async def run(self) -> None:
        try:
            while True:
                self.ticks += 1
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class _Crashing(_Ticker):
    async def run(self) -> None:
        raise RuntimeError("plugin task bug")


async def test_running_runs_each_plugin_task_and_cancels_it_on_exit() -> None:
    """Telemetry.running() (the router's lifespan) owns the plugins' tasks; a crash is contained."""
    _guard.raise_internal_errors = False
    ticker, crashing = _Ticker(), _Crashing()
    telemetry = atoms_otel.configure(plugins=[ticker, crashing], advanced=_quiet())
    assert telemetry.plugin(_Ticker) is ticker
    async with telemetry.running():
        await asyncio.sleep(0.1)
    assert ticker.ticks >= 2 and ticker.cancelled
    assert _guard.internal_error_counts()["plugin _Crashing run"] == 1


def test_a_second_handle_can_be_configured_and_shut_down_on_its_own() -> None:
    """The core configure() takes any handle: the facade's is only the default."""
    own = Telemetry()
    configure_handle(own, {"service_name": "own"}, advanced=_quiet())
    try:
        assert own.configured and own.settings.service_name == "own"
        assert atoms_otel.get_telemetry() is None  # the default handle was not touched
    finally:
        own.shutdown()
    assert not own.configured
