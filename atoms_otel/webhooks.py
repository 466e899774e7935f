"""Webhook alerts (``atoms_otel.webhooks``): the public names of the webhook plugin.

``generate_webhook_secret`` and ``verify_signature`` are documented here for receivers; everything
else is also importable from :mod:`atoms_otel`.
"""

from atoms_otel.plugins.webhooks import *  # noqa: F403
from atoms_otel.plugins.webhooks import __all__ as __all__
