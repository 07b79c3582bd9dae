"""Swappable engines of the identity checks, chosen by dotted path in settings."""
