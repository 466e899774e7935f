"""The public ``capture_telemetry`` fixture: captures every signal and isolates tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from opentelemetry import trace

import atoms_otel
from atoms_otel.testing import CapturedTelemetry


def test_captures_spans_metrics_and_logs(capture_telemetry: CapturedTelemetry) -> None:
    """A span, a counter increment and a log line are all visible to the test."""
    with trace.get_tracer("t").start_as_current_span("unit-of-work"):
        atoms_otel.get_logger("app").info("did work", items=3)
    atoms_otel.record_error("ValueError", "unit-test")

    assert capture_telemetry.span("unit-of-work").name == "unit-of-work"
    assert capture_telemetry.metric_value("errors_total", error_type="ValueError", source="unit-test") == 1
    line = capture_telemetry.log_lines[-1]
    assert line["message"] == "did work" and line["items"] == 3
    assert capture_telemetry.log_records[-1].log_record.body == "did work"


def test_state_does_not_leak_from_the_previous_test(capture_telemetry: CapturedTelemetry) -> None:
    """Counters start from zero and nothing captured earlier is visible."""
    assert capture_telemetry.metric_value("errors_total", source="unit-test") == 0
    assert capture_telemetry.spans == []
    assert capture_telemetry.log_lines == []


def test_reconfigure_keeps_capturing(capture_telemetry: CapturedTelemetry) -> None:
    """Options can be changed mid-test; capture continues on the new pipeline."""
    telemetry = capture_telemetry.reconfigure(service_name="renamed")
    atoms_otel.get_logger("app").warning("after reconfigure")
    assert telemetry.settings.service_name == "renamed"
    assert capture_telemetry.log_lines[-1]["message"] == "after reconfigure"
    assert capture_telemetry.log_records[-1].resource.attributes["service.name"] == "renamed"


ROOT = Path(__file__).resolve().parent.parent


def _run_pytest(directory: Path, test_source: str) -> subprocess.CompletedProcess[str]:
    """pytest in ``directory`` with only our tiny plugin module (the installed entry point named
    ``atoms_otel`` is switched off, so this tree's plugin is the one loaded)."""
    (directory / "test_it.py").write_text(test_source, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:atoms_otel", "-p", "atoms_otel_pytest"]
    command += ["-p", "no:cacheprovider", "-p", "no:randomly", "test_it.py"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=120)


def test_plugin_does_not_import_the_package_into_every_pytest_run(tmp_path: Path) -> None:
    """A test run that never asks for the fixture loads the plugin module and nothing of atoms_otel."""
    done = _run_pytest(
        tmp_path,
        "import sys\n"
        "def test_nothing_of_the_package_is_loaded():\n"
        "    assert 'atoms_otel_pytest' in sys.modules\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'atoms_otel')\n"
        "    assert loaded == [], loaded\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_plugin_fixture_captures_once_a_test_asks_for_it(tmp_path: Path) -> None:
    """The fixture from the tiny plugin imports the package on use and captures logs and spans."""
    done = _run_pytest(
        tmp_path,
        "import sys\n"
        "from opentelemetry import trace\n"
        "def test_captured(capture_telemetry):\n"
        "    import atoms_otel\n"
        "    assert 'atoms_otel.testing' in sys.modules\n"
        "    with trace.get_tracer('t').start_as_current_span('work'):\n"
        "        atoms_otel.get_logger('app').info('done', items=2)\n"
        "    assert capture_telemetry.span('work').name == 'work'\n"
        "    assert capture_telemetry.log_lines[-1]['items'] == 2\n"
        "def test_isolated(capture_telemetry):\n"
        "    assert capture_telemetry.spans == [] and capture_telemetry.log_lines == []\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_pytest11_entry_point_is_the_tiny_module_and_the_wheel_ships_it() -> None:
    """pyproject registers atoms_otel_pytest as the plugin and force-includes it in the wheel."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["pytest11"] == {"atoms_otel": "atoms_otel_pytest"}
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"] == {"atoms_otel_pytest.py": "atoms_otel_pytest.py"}
    assert (ROOT / "atoms_otel_pytest.py").is_file()
