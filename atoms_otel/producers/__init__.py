"""Layer 4, producers: the HTTP middleware, the decorators and the shared tool-call recorder, and the
MCP server middleware. They are given the ``Telemetry`` handle and never import plugins.
See docs/architecture.md."""
