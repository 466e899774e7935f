"""``import atoms_otel`` leaves out what a process that serves no endpoints never uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, sys
import atoms_otel
before = sorted(m for m in sys.modules if m.startswith("atoms_otel.endpoints") or m == "pydantic.v1")
router = atoms_otel.router
from atoms_otel import DashboardResponse, router as again
after = sorted(m for m in sys.modules if m.startswith("atoms_otel.endpoints"))
print(json.dumps({"before": before, "after": after, "same": router is again,
                  "routes": len(router.routes), "model": DashboardResponse.__name__}))
"""


def test_import_leaves_the_endpoints_out_until_the_router_is_used() -> None:
    """No endpoints module (nor the pydantic.v1 import FastAPI's routes trigger) at import; the
    router and the response models load on first use, the router built once."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["before"] == []
    assert "atoms_otel.endpoints.router" in found["after"] and "atoms_otel.endpoints.models" in found["after"]
    assert found["same"] is True and found["model"] == "DashboardResponse"
    assert found["routes"] > 0
