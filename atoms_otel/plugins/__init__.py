"""Layer 5, plugins: health, live signals and webhooks. Each is a :class:`~atoms_otel.core.telemetry.Plugin`
that ``configure()`` sets up with the handle; they react to typed events on ``telemetry.events`` and
own their background tasks. Producers never import plugins. See docs/architecture.md."""
