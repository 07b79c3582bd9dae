"""Business workflows run during a call (issue 5)."""
