"""The live-signals plugin: request rate, error ratio and latency from our own metrics, the recent
errors, per-route and per-tool statistics, and ``PerformanceMonitor``, the traffic health check."""
