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
from atoms_otel import _default
before = {"built": _default._router is not None, "pydantic.v1": "pydantic.v1" in sys.modules}
router = atoms_otel.router
from atoms_otel import DashboardResponse, router as again
print(json.dumps({"before": before, "built": _default._router is router, "same": router is again,
                  "routes": len(router.routes), "model": DashboardResponse.__name__}))
"""


def test_import_does_not_build_the_router_until_it_is_used() -> None:
    """No router built (nor the pydantic.v1 import FastAPI's route setup triggers) at import; the
    router is built on first use, once. (The endpoints modules themselves are imported at module
    level: the layers admit no import inside a function.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["before"] == {"built": False, "pydantic.v1": False}
    assert found["built"] is True
    assert found["same"] is True and found["model"] == "DashboardResponse"
    assert found["routes"] > 0
