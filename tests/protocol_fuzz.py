"""Generated frames for the signaling protocol, built from its schemas and then mutated; and a tap
on the logs that keeps every error. Used by test_protocol_fuzz.py and test_protocol_bounds.py."""

from __future__ import annotations

import logging


def errors_tapped(monkeypatch) -> list[logging.LogRecord]:
    """Every record logged at ERROR or above, or with a traceback, by any logger of any thread,
    whatever the loggers' levels, handlers and propagation (the tap is ``Logger.callHandlers``,
    through which every accepted record goes)."""
    kept: list[logging.LogRecord] = []
    call_handlers = logging.Logger.callHandlers

    def calling(self, record):
        if record.levelno >= logging.ERROR or record.exc_info:
            kept.append(record)
        call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", calling)
    return kept
