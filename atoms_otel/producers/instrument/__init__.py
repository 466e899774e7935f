"""Decorators that observe tools, operations, timings and database calls, and the one tool-call
recorder they share with the MCP integration. Each takes the ``Telemetry`` handle; the decorators
exported by :mod:`atoms_otel` pass the default one."""
