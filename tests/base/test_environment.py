"""The README documents every variable atoms_otel reads."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from atoms_otel.base.environment import all_variables

README = Path(__file__).resolve().parents[2] / "README.md"


def _expanded(text: str) -> set[str]:
    """Variable names in ``text``, with ``A_{X,Y}_B`` spelled out as ``A_X_B`` and ``A_Y_B``."""
    names: set[str] = set()
    for token in re.findall(r"(?:OTEL|ATOMS_OTEL)_[A-Z0-9_{},()]+", text):
        parts = re.split(r"(\{[^}]*\}|\([^)]*\))", token)
        choices = []
        for part in parts:
            if part.startswith("{"):
                choices.append(part[1:-1].split(","))
            elif part.startswith("("):
                choices.append(["", part[1:-1]])
            else:
                choices.append([part])
        names.update("".join(combo).rstrip("_") for combo in itertools.product(*choices))
    return names


def test_every_variable_read_is_in_the_readme() -> None:
    documented = _expanded(README.read_text(encoding="utf-8"))
    missing = sorted(set(all_variables()) - documented)
    assert not missing, f"README does not mention: {missing}"


def test_the_expansion_reads_braces_and_optional_parts() -> None:
    assert _expanded("`OTEL_EXPORTER_OTLP_{TRACES,LOGS}_TIMEOUT` and `OTEL_TRACES_SAMPLER(_ARG)`") == {
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    }
