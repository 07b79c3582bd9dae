# videobank: `make run` serves the demo, `make test` runs the whole suite. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Test processes (pytest-xdist): each has its own test database and Redis database
# (tests/fixtures.py); a module stays on one process (its shared server stack with it).
TEST_WORKERS ?= 2
# The fast tier on three: its tests hand work to threads and wait on the database often enough
# that a third process keeps both cores busy (2 processes 70-73 s, 3: 62-67 s, 4: 66 s here).
FAST_WORKERS ?= 3
FAST_ENV := VIDEOBANK_TEST_TIER=fast VIDEOBANK_FUZZ_FRAMES=1000
# Python keeps compiled modules (__pycache__, ignored by git) even where the machine's environment
# says not to: every test process, server and worker otherwise compiles the project again, and
# pytest rewrites every test module's asserts again on every run.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast venv fonts browser-deps lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=78"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "face-recognition==1.3.0"
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages: CJK fonts for pages and generated media (the card pictures every identity
# test reads), and Chromium for the browser tests. `$(call apt_install,PACKAGES)` installs them.
apt_install = SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(1) >/dev/null

fonts:
	@if ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then \
		echo "installing CJK fonts with apt-get"; \
		$(call apt_install,fontconfig fonts-noto-cjk fonts-wqy-microhei); \
	fi

browser-deps: fonts
	@if ! command -v chromium >/dev/null; then \
		echo "installing chromium with apt-get"; \
		$(call apt_install,chromium); \
	fi

run: $(STAMP)
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py seed_demo
	@echo "videobank (embedded profile) on http://$(HOST):$(PORT)/  — console: http://$(HOST):$(PORT)/console/"
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) videobank.asgi:application

test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The everyday tier: every test that needs no browser and starts no process (tests/fixtures.py
# marks them and fails a fast-tier test that starts one anyway), in parallel.
test-fast: $(STAMP) fonts
	$(FAST_ENV) $(PY) -m pytest -n $(FAST_WORKERS) --dist loadfile --no-loadscope-reorder \
		-m "not browser and not process" $(PYTEST_ARGS)

# Static checks: ruff's lint rules and layout, and mypy (files and strictness in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/media_sessions.py --sessions 1

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache
