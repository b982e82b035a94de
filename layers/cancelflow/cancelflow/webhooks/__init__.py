"""Webhooks to shops: endpoints, signed deliveries of recorded events, retries (issue 15)."""
