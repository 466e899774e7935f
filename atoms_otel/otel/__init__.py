"""Layer 2, OpenTelemetry plumbing: swappable global providers, the pipeline (resource, providers,
processors, exporters), the metric facades and structured logging. See docs/architecture.md."""
