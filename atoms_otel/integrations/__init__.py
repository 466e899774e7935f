"""Layer 7, wiring: ``instrument_fastapi(app, telemetry, router=...)`` puts the producers, the
endpoints and the plugins' lifecycle together on a FastAPI app."""
