"""Fixtures for every test folder (loaded as a plugin: see addopts in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from typing import TYPE_CHECKING

import pytest
from django.conf import settings

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Test processes run side by side, one per core: one OCR reading per process uses one core
    # (see KYC_OCR_THREADS in videobank/settings/base.py). Read when the settings load, after this.
    os.environ.setdefault("KYC_OCR_THREADS", "1")

from tests.keys import session_keys_export

if TYPE_CHECKING:
    from tests.livestack import LiveStack

# The test servers (in process and the live ones the tests start, which inherit this
# environment) speak plain HTTP on loopback: on the production profile, HTTPS redirects and
# secure-only cookies are off for them. Read before the settings are (this plugin is loaded
# first); tests/test_deploy_checks.py runs `check --deploy` without these.
TEST_PLAIN_HTTP = {
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_SESSION_COOKIE_SECURE": "false",
    "DJANGO_CSRF_COOKIE_SECURE": "false",
}
for _name, _value in TEST_PLAIN_HTTP.items():
    os.environ.setdefault(_name, _value)


def _redis_db_per_worker(environ=os.environ) -> None:
    """Under pytest-xdist each worker is a test session of its own: its own Postgres test
    database (pytest-django names it per worker) and, here, its own Redis database, so that one
    worker's channel groups, rate windows, Celery queue and ticker lease never reach another's."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = environ.get(name)
        if not url:
            continue
        parts = urllib.parse.urlsplit(url)
        base = int(parts.path.strip("/") or 0)
        db = (base + 1 + int(worker[2:])) % 16
        environ[name] = urllib.parse.urlunsplit(parts._replace(path=f"/{db}"))


_redis_db_per_worker()

# Before pytest-django reads the settings: this session's random keys, shared with every process
# it starts (tests/keys.py). Nothing published opens a stub, and production's checks pass.
session_keys_export()


# Rows the migrations and Django's post-migrate handlers make once and no test changes: a
# transactional test's teardown leaves them. Django's own flush empties them too and then
# re-creates every content type and permission through post_migrate, which was 90 % of the
# flush's time (11.5 of 12.7 CPU-s in the fast tier).
KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})


def _flush_keeps_static_rows() -> None:
    """A transactional test's teardown empties every table but KEPT_TABLES, in one statement
    (TRUNCATE on Postgres), without re-running post_migrate.

    The module's server stack may still be at work on the same database: the queue ticker's
    next tick locks rows of the tables the TRUNCATE goes through in another order, and Postgres
    breaks the deadlock by cancelling one side. When it cancels the TRUNCATE, the flush is
    simply done again (the ticker's transaction has gone through by then)."""
    from django.core.management.color import no_style
    from django.db import DatabaseError, connections
    from django.test import TransactionTestCase

    def flush(alias: str) -> None:
        connection = connections[alias]
        tables = [
            table
            for table in connection.introspection.django_table_names(
                only_existing=True, include_views=False
            )
            if table not in KEPT_TABLES
        ]
        statements = connection.ops.sql_flush(
            no_style(), tables, reset_sequences=False, allow_cascade=False
        )
        for attempt in range(5):
            try:
                connection.ops.execute_sql_flush(statements)
                return
            except DatabaseError as error:
                if attempt == 4 or "deadlock detected" not in str(error):
                    raise

    def fixture_teardown(self) -> None:
        for alias in self._databases_names(include_mirrors=False):
            flush(alias)

    setattr(TransactionTestCase, "_fixture_teardown", fixture_teardown)  # noqa: B010


_flush_keeps_static_rows()


@pytest.fixture(scope="session", autouse=True)
def _recording_dir(tmp_path_factory):
    """Recordings of the test run go to a temporary folder shared with the live servers."""
    settings.RECORDING_DIR = tmp_path_factory.mktemp("recordings")
    settings.VAR_DIR = tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashes():
    """Staff accounts made in the test process hash at 1,000 iterations (tests/hashers.py)."""
    from django.test.signals import setting_changed

    settings.PASSWORD_HASHERS = hashers = ["tests.hashers.QuickPBKDF2PasswordHasher"]
    setting_changed.send(None, setting="PASSWORD_HASHERS", value=hashers, enter=True)


@pytest.fixture
def catalogue(db):
    """The business catalogue and role groups (transactional tests flush migration data)."""
    from tests.factories import catalogue_seed

    catalogue_seed()


# Fixtures that use the shared servers; the stack fixtures of their own that some modules have
# depend on no_shared_stack. A test using one starts processes: it is a `process` test.
STACK_FIXTURES = frozenset({"live_stack", "shared_stack", "no_shared_stack"})


class SharedStack:
    """The session's shared server stack, started on first use and kept from one module that
    uses it to the next; stopped when a module that does not use it begins
    (``_shared_stack_per_module``: its queue ticker works on the test database, and tests
    elsewhere freeze or move the queue's clock themselves); started again when the environment
    its servers would get has changed (a test set a variable for them). A test that needs the
    servers to itself (e.g. to kill the only media worker) stops it first with :meth:`stop`.
    The full suite hands out the modules that use it first (``_stack_files_first``), so that a
    test process runs them one after the other on one stack."""

    current: SharedStack | None = None  # the session's instance, for module teardown

    def __init__(self, log_dir) -> None:
        self.log_dir = log_dir
        self.stack: LiveStack | None = None
        self.env: dict[str, str] = {}
        self.starts = 0
        SharedStack.current = self

    def get(self):
        from tests.livestack import LiveStack, stack_env

        # What the servers would be started with (pytest's own per-test variables aside).
        env = {k: v for k, v in stack_env().items() if not k.startswith("PYTEST_")}
        if self.stack is not None and env != self.env:
            self.stop()
        if self.stack is None:
            self.starts += 1
            self.stack = LiveStack(log_dir=self.log_dir / f"stack-{self.starts}").start()
            self.env = env
        return self.stack

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


@pytest.fixture(scope="session")
def shared_stack(django_db_setup, django_db_blocker, tmp_path_factory):
    from tests.factories import catalogue_seed

    with django_db_blocker.unblock():
        catalogue_seed()
    shared = SharedStack(tmp_path_factory.mktemp("stack-logs"))
    yield shared
    shared.stop()
    SharedStack.current = None


@pytest.fixture
def live_stack(shared_stack):
    """The real server processes of the current profile, on the test database."""
    return shared_stack.get()


def starts_processes(fixture_function):
    """Says of a fixture that it starts a process (a stub server, a worker): the tests that use
    it, directly or through other fixtures, are `process` tests (pytest_collection_modifyitems).
    Put it under ``@pytest.fixture``."""
    fixture_function.starts_processes = True
    return fixture_function


def _is_process_test(item) -> bool:
    """Does the test use the server stack, or a fixture marked `starts_processes`?"""
    if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return any(
        getattr(definition.func, "starts_processes", False)
        for chain in definitions
        for definition in chain
    )


# The test files (module node ids) with a test on the shared servers (collection fills it).
_SHARED_STACK_FILES: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _shared_stack_per_module(request):
    """The shared servers do not outlive the run of modules that use them: a module that does
    not use them stops them as it begins (their queue ticker works on the test database)."""
    if SharedStack.current is not None and request.node.nodeid not in _SHARED_STACK_FILES:
        SharedStack.current.stop()


@pytest.fixture
def no_shared_stack(shared_stack):
    """Stop the shared stack: this test's own servers must be the only ones registered."""
    shared_stack.stop()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A new channel-layer instance per test: Redis layers bind their locks to one event loop."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _outside_circuits_closed():
    """Each test starts with every outside service's circuit closed (a breaker is a process's
    memory of missed answers: one test's outage must not open another's circuit)."""
    from videobank.outside.breaker import breakers_reset

    breakers_reset()
    yield
    breakers_reset()


@pytest.fixture
def virtual_time():
    """The outside kit's clock, driven by the test (videobank/outside/testing.py): back-off
    waits return at once and are recorded in ``.sleeps``; breakers' cool-downs pass with them
    or with ``.advance(seconds)``."""
    from videobank.outside.testing import VirtualTime

    with VirtualTime().installed() as time:
        yield time


@pytest.fixture(scope="session", autouse=True)
def _no_persistent_connections():
    """In the test process every thread closes its database connection when its work is done
    (CONN_MAX_AGE 0 instead of production's 60). Worker threads of this process (asgiref's
    sync thread under in-process consumers, the embedded identity-analysis thread) would
    otherwise keep a session open, and Postgres refuses to drop the test database at the end.
    The live servers the tests start are separate processes and keep production's setting."""
    for alias in settings.DATABASES.values():
        alias["CONN_MAX_AGE"] = 0  # in place: the connection handler holds these very dicts


@pytest.fixture(scope="session", autouse=True)
def _no_session_left_on_the_test_database(django_db_setup, django_db_blocker):
    """Before the test database is dropped (this fixture's teardown runs first: it depends on
    the database's): sessions a test's thread left open on it — a thread of a pool that ran an
    ORM call through plain ``sync_to_async`` outside any request, whose connection no request
    cycle closes — are ended, so that Postgres can drop the database. The servers the tests
    start are gone by then (their stacks stop with each module)."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()


# --- test tiers ----------------------------------------------------------------------------------

FAST_TIER = "VIDEOBANK_TEST_TIER"  # "fast": `make test-fast` (no browser, no extra process)


def _fast_tier() -> bool:
    return os.environ.get(FAST_TIER) == "fast"


def pytest_collection_modifyitems(config, items):
    """A test that uses the server stack or a fixture marked with `starts_processes` (directly
    or through another fixture) is marked `process`, like the modules that start workers or
    commands themselves.

    The order stays pytest-xdist's (files with the most tests first): starting the modules with
    browsers and servers first balanced the two processes better, but changed nothing the
    browser identity checks need (sharp video under CPU load) and was taken back out."""
    process = pytest.mark.process
    for item in items:
        if _is_process_test(item):
            item.add_marker(process)
        fixtures = set(getattr(item, "fixturenames", ()))
        if "shared_stack" in fixtures and "no_shared_stack" not in fixtures:
            _SHARED_STACK_FILES.add(_file_of(item))
    if _fast_tier():
        _longest_files_first(config, items)
    else:
        _stack_files_first(items)


def _file_of(item_or_report) -> str:
    return item_or_report.nodeid.split("::")[0]


def _stack_files_first(items) -> None:
    """The full suite (``make test`` passes --no-loadscope-reorder) hands out the files on the
    shared servers first, then those that start servers of their own, then the rest. Within
    each, the long ones first (a browser test, or a test marked ``long``), then by number of
    tests. A test process takes the shared-server files one after the other and starts the
    servers once, not once a file; no long file is left for the end while the other process
    waits."""
    counts: dict[str, int] = {}
    own: set[str] = set()
    long: set[str] = set()
    for item in items:
        file = _file_of(item)
        counts[file] = counts.get(file, 0) + 1
        if "no_shared_stack" in getattr(item, "fixturenames", ()):
            own.add(file)
        if item.get_closest_marker("browser") or item.get_closest_marker("long"):
            long.add(file)

    def order(file: str) -> tuple[int, bool, int]:
        group = 0 if file in _SHARED_STACK_FILES else 1 if file in own else 2
        return (group, file not in long, -counts[file])

    _files_sorted(items, order)


def _files_sorted(items, order) -> None:
    """Sort ``items`` by ``order(file)``; a file's tests stay together and in their order, and
    files that order the same keep the order they were collected in."""
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(_file_of(item), index)
    items.sort(key=lambda item: (order(_file_of(item)), first_seen[_file_of(item)]))


# The fast tier hands whole files to its processes, longest first by the last run's times (kept in
# pytest's cache), so that no process is left with a long file at the end while the other waits.
# `make test-fast` passes --no-loadscope-reorder for that (pytest-xdist would sort by test count).
FILE_SECONDS_CACHE = "videobank/file-seconds"


def _longest_files_first(config, items) -> None:
    seconds = config.cache.get(FILE_SECONDS_CACHE, {}) if config.cache else {}
    if not seconds:
        return
    _files_sorted(items, lambda file: -seconds.get(file, 0.0))


_file_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    if not _fast_tier():
        return
    path = _file_of(report)
    _file_seconds[path] = _file_seconds.get(path, 0.0) + report.duration


def pytest_sessionfinish(session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or not config.cache or not _file_seconds:
        return
    seconds = dict(config.cache.get(FILE_SECONDS_CACHE, {}))
    seconds.update({path: round(value, 2) for path, value in _file_seconds.items()})
    config.cache.set(FILE_SECONDS_CACHE, seconds)


def _is_font_lookup(args) -> bool:
    argv = [args] if isinstance(args, (str, bytes)) else list(args)
    return bool(argv) and os.path.basename(str(argv[0])) in {"fc-list", "fc-match"}


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_reads_each_picture_once():
    """In the fast tier the identity-check models read a picture a process has read before from
    memory (tests/model_memo.py says why and what it keeps); the full suite reads every time."""
    if not _fast_tier():
        yield
        return
    from tests.model_memo import engine_readings_memoised

    with engine_readings_memoised():
        yield


_running: list[pytest.Item] = []  # the test being set up, run or torn down


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _running[:] = [item]
    try:
        return (yield)
    finally:
        _running.clear()


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_starts_no_process():
    """In the fast tier a test that starts a process fails and says how to mark it, so that
    the tier stays what its name says (`make test-fast`). The guard holds for the whole session,
    so a module's or session's fixture that starts a server is caught too (it fails the test it
    was set up for)."""
    if not _fast_tier():
        yield
        return
    execute_child = getattr(subprocess.Popen, "_execute_child")  # noqa: B009 - private in the stubs

    def guarded(self, args, *rest, **kwargs):
        item = _running[0] if _running else None
        if _is_font_lookup(args) or (item is not None and item.get_closest_marker("process")):
            # matplotlib asks fontconfig for the installed fonts the first time it draws on a
            # machine: a short query, not a process the test relies on.
            return execute_child(self, args, *rest, **kwargs)
        raise RuntimeError(
            f"{item.nodeid if item else 'the session'} starts a process ({args!r}): the fast "
            "tier starts none; mark the test or its module with @pytest.mark.process"
        )

    setattr(subprocess.Popen, "_execute_child", guarded)  # noqa: B010
    try:
        yield
    finally:
        setattr(subprocess.Popen, "_execute_child", execute_child)  # noqa: B010
