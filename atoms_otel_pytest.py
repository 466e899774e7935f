"""The pytest plugin atoms_otel installs (entry point ``pytest11``): the ``capture_telemetry`` fixture.

Every pytest run in an environment where atoms_otel is installed loads this module, and most of those
runs never use the fixture. So it lives outside the ``atoms_otel`` package (importing any module of
the package runs the package's ``__init__``, which loads all of it) and imports ``atoms_otel.testing``
only when a test asks for the fixture. The fixture itself is documented in ``atoms_otel.testing``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from atoms_otel.testing import CapturedTelemetry

__all__ = ["capture_telemetry"]


@pytest.fixture
def capture_telemetry() -> Iterator[CapturedTelemetry]:
    """configure() with in-memory capture for one test; everything is reset afterwards.

    See :class:`atoms_otel.testing.CapturedTelemetry` for what it holds."""
    from atoms_otel.testing import captured  # here, not at module level: see the module docstring

    with captured() as capture:
        yield capture
