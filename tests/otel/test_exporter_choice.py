"""The OTel spec's exporter variables: OTEL_{TRACES,METRICS,LOGS}_EXPORTER choose what leaves the
process (checked against a real collector); OTEL_EXPORTER_OTLP_TIMEOUT; OTEL_CONFIG_FILE refused."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

import atoms_otel
from atoms_otel import AdvancedOptions, ConfigurationError, Counter, get_logger
from atoms_otel.base.settings import resolve
from tests.support.collector import Collector


@pytest.fixture(autouse=True)
def _shutdown_after() -> Iterator[None]:
    yield
    atoms_otel.shutdown()


def _emit(marker: str) -> None:
    with atoms_otel.span(f"span {marker}"):
        get_logger("choice").warning(f"log {marker}")
    Counter(f"choice_{marker}_total", "A count", labels=()).inc()


@pytest.mark.real
@pytest.mark.parametrize(
    ("variable", "silent"),
    [("OTEL_TRACES_EXPORTER", "span"), ("OTEL_METRICS_EXPORTER", "metric"), ("OTEL_LOGS_EXPORTER", "log")],
)
def test_none_keeps_that_signal_in_the_process_and_the_others_flow(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, variable: str, silent: str
) -> None:
    """With one endpoint set, <SIGNAL>_EXPORTER=none exports nothing of that signal; the other two
    arrive (so a scrape-mode deployment can keep one OTEL_EXPORTER_OTLP_ENDPOINT)."""
    monkeypatch.setenv(variable, "none")
    marker = silent
    atoms_otel.configure(
        service_name="choice",
        otlp_endpoint=collector.http_endpoint,
        advanced=AdvancedOptions(log_stream=io.StringIO(), synchronous_export=True),
    )
    _emit(marker)
    atoms_otel.shutdown()
    wanted = {
        "span": lambda c: [s for s in c.spans() if s["name"] == f"span {marker}"],
        "log": lambda c: [r for r in c.logs() if r["body"] == f"log {marker}"],
        "metric": lambda c: [m for m in c.metrics() if f"choice_{marker}" in str(m.get("name"))],
    }
    for signal, found in wanted.items():
        if signal != silent:
            assert collector.wait_for(found), f"{signal} missing"
    assert wanted[silent](collector) == []


def test_console_exporters_print_the_signals(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """console prints finished spans and OTel log records to stdout (no endpoint needed)."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
    atoms_otel.configure(advanced=AdvancedOptions(log_stream=io.StringIO(), synchronous_export=True))
    _emit("console")
    atoms_otel.shutdown()
    printed = capfd.readouterr().out
    assert '"name": "span console"' in printed and "log console" in printed


def test_exporter_names_are_validated_and_the_otlp_timeout_is_in_milliseconds() -> None:
    """Unknown names fail with the setting named; OTEL_EXPORTER_OTLP_TIMEOUT=2500 is 2.5 s unless
    ATOMS_OTEL_EXPORT_TIMEOUT_S says otherwise."""
    with pytest.raises(ConfigurationError, match="OTEL_METRICS_EXPORTER='zipkin'"):
        resolve({}, {"OTEL_METRICS_EXPORTER": "zipkin"})
    with pytest.raises(ConfigurationError, match="cannot be combined"):
        resolve({}, {"OTEL_TRACES_EXPORTER": "none,otlp"})
    assert resolve({}, {"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}).otlp_timeout_s == 2.5
    both = {"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "ATOMS_OTEL_EXPORT_TIMEOUT_S": "7"}
    assert resolve({}, both).otlp_timeout_s == 7.0
    assert resolve({}, {"OTEL_METRICS_EXPORTER": "prometheus"}).otlp_signal_endpoint("metrics") is None


def test_a_declarative_config_file_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_CONFIG_FILE fails configure() with a message naming it; nothing is configured."""
    monkeypatch.setenv("OTEL_CONFIG_FILE", "/etc/otel/sdk.yaml")
    with pytest.raises(ConfigurationError, match="OTEL_CONFIG_FILE"):
        atoms_otel.configure()
    assert atoms_otel.get_telemetry() is None
