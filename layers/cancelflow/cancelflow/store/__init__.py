"""store port and adapters."""
