"""gateway port and adapters."""
