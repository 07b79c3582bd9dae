"""The stub's knobs: Django settings first, then the environment (a stub started for a test on a
free port gets its knobs from the environment), then the default (``videobank.outside.conf``)."""

from videobank.outside.conf import outside_setting as stub_setting

__all__ = ["stub_setting"]
