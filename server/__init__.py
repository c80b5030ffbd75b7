"""The runtime and composition root."""
