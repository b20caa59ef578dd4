"""The JSON API under /api/v1 (organisation tokens) and the webhooks sent to its clients."""
