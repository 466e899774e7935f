"""The HTTP producer: pure-ASGI middleware that turns requests into spans, metrics, log context and
events (see :mod:`atoms_otel.producers.http.engine`)."""
