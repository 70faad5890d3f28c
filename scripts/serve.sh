#!/usr/bin/env bash
# make serve: the demo site as production runs it: gunicorn with several workers on
# PostgreSQL and Redis (DATABASE_URL, CACHE_URL), against the embedded sandbox unless
# FTAUTH_SANDBOX=false and the FT_* variables name real servers. Creates the PostgreSQL
# database when it is missing, migrates, collects the static files (WhiteNoise serves them
# from STATIC_ROOT), then serves on SERVE_ADDR (default 127.0.0.1:8000). The access log
# goes to standard output through ftauth's logger class, which redacts the sign-in secrets
# of request lines and Referers. docs/deployment.md explains each part.
set -euo pipefail
cd "$(dirname "$0")/.."

# PYTHON: the interpreter of an environment with the [serve] extra (make's .venv by default).
python=${PYTHON:-.venv/bin/python}
addr=${SERVE_ADDR:-127.0.0.1:8000}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ftauth_demo}
export CACHE_URL=${CACHE_URL:-rediscache://127.0.0.1:6379/1}
export FTAUTH_SANDBOX=${FTAUTH_SANDBOX:-true}
export FT_SANDBOX_URL=${FT_SANDBOX_URL:-http://$addr}

if [[ $DATABASE_URL == postgres* ]]; then
  "$python" - <<'PY'
import os
from urllib.parse import urlsplit

import psycopg

url = urlsplit(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1))
name = url.path.lstrip("/")
with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as db:
    if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        db.execute(f'CREATE DATABASE "{name}"')
        print(f"serve.sh: created database {name}")
PY
fi
"$python" manage.py migrate --noinput
"$python" manage.py collectstatic --noinput -v 0
# Sync workers: ftauth's waits (France Travail's answers, the quota) hold a worker, so
# count workers for the concurrent sign-ins you expect (docs/deployment.md).
exec "$python" -m gunicorn demo_site.wsgi:application --bind "$addr" \
  --workers "${SERVE_WORKERS:-4}" --graceful-timeout 10 \
  --access-logfile - --logger-class ftauth.gunicorn.Logger
