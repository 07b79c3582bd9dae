"""Swappable engines behind recordings: key management (``keys``)."""
