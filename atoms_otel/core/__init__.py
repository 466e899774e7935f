"""Layer 3, the core: the :class:`~atoms_otel.core.telemetry.Telemetry` handle and a ``configure()``
that knows nothing of FastAPI or of any plugin. See docs/architecture.md."""
