"""Layer 6, endpoints: the router (``/metrics``, health probes, the observability API, the live
view), its bearer-token checks, response models and presenters. Endpoints only read signals."""
