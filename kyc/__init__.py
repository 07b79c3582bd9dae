"""Identity checks inside the call (issue 4)."""
