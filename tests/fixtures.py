"""Fixtures for every test folder (loaded as a plugin: see addopts in pyproject.toml)."""

from __future__ import annotations

import pytest
from django.conf import settings


@pytest.fixture(scope="session", autouse=True)
def _recording_dir(tmp_path_factory):
    """Recordings of the test run go to a temporary folder shared with the live servers."""
    settings.RECORDING_DIR = tmp_path_factory.mktemp("recordings")
    settings.VAR_DIR = tmp_path_factory.mktemp("var")


@pytest.fixture
def catalogue(db):
    """The business catalogue and role groups (transactional tests flush migration data)."""
    from tests.factories import catalogue_seed

    catalogue_seed()


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """The real server processes of the current profile, on the test database."""
    from tests.factories import catalogue_seed
    from tests.livestack import LiveStack

    with django_db_blocker.unblock():
        catalogue_seed()
    stack = LiveStack(log_dir=tmp_path_factory.mktemp("stack-logs")).start()
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new channel-layer instance per test: Redis layers bind their locks to one event loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
