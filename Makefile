# make demo:  set up and serve the demo site on DEMO_ADDR (default 127.0.0.1:8000)
#             against the embedded sandbox identity server (SQLite, no .env needed).
# make test:  set up and run the whole suite: ruff, then Python 3.11 + Django 5.2 and
#             Python 3.12 + Django 6 on SQLite and on PostgreSQL + Redis, and the browser
#             tests in headless Chromium (scripts/run-tests.sh; logs in artifacts/test-logs/).
# make serve: the demo under gunicorn (SERVE_WORKERS, default 4) on PostgreSQL and Redis
#             (DATABASE_URL, CACHE_URL), on SERVE_ADDR (default 127.0.0.1:8000),
#             static files by WhiteNoise, access log redacted (scripts/serve.sh). Starts
#             PostgreSQL and Redis if needed (scripts/services.sh), installs nothing else.
# make check: Django's system checks and a migrations-up-to-date check on the demo settings.
# make dist:  build the wheel and sdist in dist/ and check them with twine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv
VENV312 := .venv-312
PYTHON := $(VENV)/bin/python
DEMO_ADDR ?= 127.0.0.1:8000

.PHONY: demo serve test interop check lint services test-tools venv venv312 bench messages dist clean

# The stamps depend on pyproject.toml: a changed dependency or extra reinstalls.
# scripts/find-python.sh finds a working interpreter even where pyenv shims are not.
$(VENV)/.installed: pyproject.toml
	py=$$(bash scripts/find-python.sh 3.11) && $$py -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dev]" "Django>=5.2,<5.3"
	touch $@

$(VENV312)/.installed: pyproject.toml
	py=$$(bash scripts/find-python.sh 3.12) && $$py -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q -e ".[test]" "Django>=6.0,<7"
	touch $@

venv: $(VENV)/.installed
venv312: $(VENV312)/.installed

# The sandbox serves the identity server on the same dev server; its URLs follow the
# address each request came to, so DEMO_ADDR=127.0.0.1:8001 needs nothing else.
demo: venv
	$(PYTHON) manage.py migrate --noinput
	FTAUTH_SANDBOX=$${FTAUTH_SANDBOX:-true} $(PYTHON) manage.py runserver $(DEMO_ADDR)

serve: venv services
	bash scripts/serve.sh

check: venv
	$(PYTHON) manage.py check --fail-level WARNING
	$(PYTHON) manage.py makemigrations --check --dry-run

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# PostgreSQL and Redis: what a server needs.
services:
	bash scripts/services.sh

# Chromium and Node.js: what the test suite needs besides.
test-tools:
	bash scripts/test-tools.sh

# The interoperability tests' identity server (oidc-provider, pinned by package-lock.json).
INTEROP := tests/interop
$(INTEROP)/node_modules/.installed: $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund
	touch $@

interop: test-tools $(INTEROP)/node_modules/.installed

test: venv venv312 services test-tools interop
	bash scripts/run-tests.sh

bench: venv services
	$(PYTHON) -m bench

# Compiles ftauth's, the sandbox's and the demo's catalogues (the .mo files are committed).
messages: venv
	$(PYTHON) manage.py compilemessages --ignore '.venv*' --ignore build --ignore dist

# Compiled catalogues (.mo) are committed, so a wheel built here speaks French and English.
dist: venv
	rm -rf dist build
	$(PYTHON) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

clean:
	rm -rf $(VENV) $(VENV312) .pytest_cache artifacts dist build
