"""Every environment variable atoms_otel reads, in one listing (``python -m atoms_otel env``, docs, tests).

Three tables feed it: the settings table (:mod:`atoms_otel.base.settings`), the per-signal OTLP
options (:mod:`atoms_otel.base.otlp`) and the SDK's own variables that configure() validates
(:mod:`atoms_otel.base.sdk_env`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from atoms_otel.base.otlp import export_variables
from atoms_otel.base.sdk_env import SDK_VARIABLES
from atoms_otel.base.settings import ARGUMENTS, PARAMS, SECRET, ConfigurationError, Settings, resolve, shown

__all__ = ["all_variables", "describe", "describe_environment", "env_vars"]

_ENV_NAME: Final = re.compile(r"^(OTEL|ATOMS_OTEL)_[A-Z0-9_]+$")


def env_vars() -> dict[str, str]:
    """Each environment variable of the settings table, mapped to its setting."""
    return {var: row.name for row in PARAMS for var in row.env if _ENV_NAME.match(var)}


def all_variables() -> dict[str, str]:
    """Every ``OTEL_*`` / ``ATOMS_OTEL_*`` variable read, mapped to what it sets."""
    found = dict(env_vars())
    for var, (signal, option) in export_variables().items():
        found[var] = f"otlp[{signal}].{option.name}"
    for variable in SDK_VARIABLES:
        found[variable.name] = f"sdk: {variable.doc}"
    return found


def describe(names: tuple[str, ...] = ARGUMENTS) -> str:
    """The Google-style ``Args:`` lines of these settings, from the table (configure()'s docstring)."""
    lines = []
    for name in names:
        row = next(r for r in PARAMS if r.name == name)
        lines.append(f"    {name}: {row.doc} ({', '.join(row.env)}).")
    return "\n".join(lines)


def _line(var: str, what: str, value: str, source: str) -> str:
    return f"{var:<48} {what:<28} {value:<24} {source}"


def _export_lines(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    lines = []
    for var, (signal, option) in sorted(export_variables().items()):
        if var not in environ:
            lines.append(_line(var, f"otlp[{signal}].{option.name}", "-", "default"))
            continue
        value = SECRET if option.secret else repr(environ[var])
        lines.append(_line(var, f"otlp[{signal}].{option.name}", value, var))
    return lines


def describe_environment(environ: Mapping[str, str]) -> list[str]:
    """One line per variable read: name, what it sets, the value in effect (secrets as ``'***'``)
    and where it came from; or the configuration errors ``configure()`` would raise."""
    try:
        settings = resolve({}, environ)
    except ConfigurationError as exc:
        return [str(exc)]
    lines = []
    for var, name in sorted(env_vars().items()):
        row = next(r for r in PARAMS if r.name == name)
        source = settings.sources.get(name, "default")
        value = shown(row, getattr(settings, name)) if source != "default" or name in environ else "-"
        lines.append(_line(var, name, value, source if var in environ else "default"))
    lines += _export_lines(settings, environ)
    for variable in SDK_VARIABLES:
        if variable.name in environ:
            value = repr(settings.sdk_environment.get(variable.name))
            lines.append(_line(variable.name, "sdk", value, variable.name))
        else:
            lines.append(_line(variable.name, "sdk", "-", "default"))
    return lines
