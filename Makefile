# make demo: set up and serve the demo site against the embedded sandbox (SQLite).
# make test: set up and run the whole suite (both supported Python/Django pairs,
#            SQLite and PostgreSQL, Redis, headless Chromium).
SHELL := /bin/bash
PY311 ?= $(shell command -v python3.11 || echo /root/.pyenv/versions/3.11.7/bin/python3.11)
PY312 ?= $(shell command -v python3.12 2>/dev/null || ls /root/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | head -n1)
VENV := .venv
VENV312 := .venv-312
PYTHON := $(VENV)/bin/python

.PHONY: demo test venv venv312 lint services test-311 test-312 bench clean messages

$(VENV)/.installed: pyproject.toml
	$(PY311) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]" "Django>=5.2,<5.3"
	touch $@

$(VENV312)/.installed: pyproject.toml
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/pip install -q --upgrade pip
	$(VENV312)/bin/pip install -q -e ".[test]" "Django>=6.0,<7"
	touch $@

venv: $(VENV)/.installed
venv312: $(VENV312)/.installed

demo: venv
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py runserver 127.0.0.1:8000

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

services:
	bash scripts/services.sh

test-311: venv services
	$(VENV)/bin/pytest -q
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/ftauth CACHE_URL=rediscache://127.0.0.1:6379/1 \
		$(VENV)/bin/pytest -q -m "not browser"

test-312: venv312 services
	$(VENV312)/bin/pytest -q -m "not browser"
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/ftauth CACHE_URL=rediscache://127.0.0.1:6379/2 \
		$(VENV312)/bin/pytest -q -m "not browser"

test: lint test-311 test-312

bench: venv services
	$(PYTHON) -m bench

messages: venv
	cd ftauth && ../$(PYTHON) ../manage.py compilemessages

clean:
	rm -rf $(VENV) $(VENV312) .pytest_cache artifacts
