"""Web parts every channel shares: the webhook token check and the health endpoints."""
