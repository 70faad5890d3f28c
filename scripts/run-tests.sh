#!/usr/bin/env bash
# The test matrix behind `make test`: lint, then one pytest process per (Python/Django,
# database) pair plus the browser run, at most $TEST_JOBS at a time (default 2, the CI's
# cores). Every run names its database and cache explicitly (an exported DATABASE_URL never
# leaks into a SQLite run); runs at the same time use different PostgreSQL test databases
# and Redis databases (11 and 12, which other work on the machine should leave alone: the
# sandbox fixture clears its cache). Each run's output goes to
# artifacts/test-logs/<run>.log and is printed whole when the run ends; the last lines are a
# table with every run's pytest summary. The multi-host test (marker hosts: two gunicorn
# servers sharing PostgreSQL and Redis) runs in the PostgreSQL + Redis runs only, and must. Any failure, including pytest's exit code 5 (no
# tests collected) or a run in which nothing passed, fails the whole matrix.
# Arguments are passed to every pytest run (e.g. scripts/run-tests.sh tests/core tests/browser).
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${TEST_JOBS:-2}
logs=artifacts/test-logs
rm -rf "$logs" artifacts/browser
mkdir -p "$logs"

pg=postgres://postgres@127.0.0.1:5432
redis=rediscache://127.0.0.1:6379
# make test installs tests/interop's identity server first: its tests must run, not skip.
sqlite="DATABASE_URL=sqlite:///:memory: CACHE_URL=locmemcache://ftauth-tests FTAUTH_REQUIRE_INTEROP=1"
# Per checkout (not per invocation): two checkouts' matrices running at the same time stay
# apart, and a test database left by an interrupted run is reused, not piled up.
tag=${FTAUTH_TEST_TAG:-$(pwd -P | cksum | cut -d' ' -f1)}

# name | venv | marker expression | environment (space-separated, no spaces inside values).
# Longest runs first: the scheduler starts them in this order.
runs=(
  "py311-django52-postgres-redis|.venv|not browser|DATABASE_URL=$pg/ftauth_${tag}_311 CACHE_URL=$redis/11 FTAUTH_REQUIRE_HOSTS=1 FTAUTH_REQUIRE_INTEROP=1"
  "py312-django6-postgres-redis|.venv-312|not browser|DATABASE_URL=$pg/ftauth_${tag}_312 CACHE_URL=$redis/12 FTAUTH_REQUIRE_HOSTS=1 FTAUTH_REQUIRE_INTEROP=1"
  "py311-django52-sqlite|.venv|not browser and not hosts|$sqlite"
  "py312-django6-sqlite|.venv-312|not browser and not hosts|$sqlite"
  "py311-django52-sqlite-browser|.venv|browser|$sqlite FTAUTH_REQUIRE_BROWSER=1"
)

# Background jobs ignore SIGINT; an interrupted matrix stops its pytest processes itself.
trap 'kill -TERM $(jobs -p) 2>/dev/null; exit 130' INT TERM

start_all=$(date +%s)
failed=()
declare -A started=() result=()

report() {  # report <name> <rc>: print the run's log, record its verdict
  local name=$1 rc=$2 log=$logs/$1.log summary verdict
  summary=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped|deselected)|no tests ran|^=+ .* in [0-9.]+s' \
    "$log" | tail -n1 | sed -E 's/^=+ //; s/ =+$//')
  if [ "$rc" = 5 ]; then
    verdict="FAILED (pytest exit 5: no tests collected)"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    verdict="FAILED (killed after ${RUN_TIMEOUT:-1800}s)"
  elif [ "$rc" = 127 ]; then
    verdict="FAILED (exit 127: virtualenv missing, run make)"
  elif [ "$rc" != 0 ]; then
    verdict="FAILED (pytest exit $rc)"
  elif ! grep -qE '[0-9]+ passed' <<<"$summary"; then
    verdict="FAILED (no test passed)"
    rc=1
  else
    verdict="passed"
  fi
  [ "$rc" = 0 ] || failed+=("$name")
  result[$name]=$(printf '%-32s %-44s %s (%ss wall)' "$name" "$verdict" "${summary:-no summary}" \
    "$(($(date +%s) - started[$name]))")
  echo
  echo "======== $name: $verdict ========"
  cat "$log"
}

echo "== lint: ruff check, ruff format --check; manage.py check, makemigrations --check"
if .venv/bin/ruff check . && .venv/bin/ruff format --check . \
  && .venv/bin/python manage.py check --fail-level WARNING \
  && .venv/bin/python manage.py makemigrations --check --dry-run; then
  lint="passed"
else
  lint="FAILED"
  failed+=(lint)
fi

pending=("${runs[@]}")
running=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  still=()
  for name in "${running[@]}"; do
    if [ -s "$logs/$name.rc" ]; then
      report "$name" "$(cat "$logs/$name.rc")"
    else
      still+=("$name")
    fi
  done
  running=("${still[@]}")
  if [ ${#pending[@]} -gt 0 ] && [ ${#running[@]} -lt "$jobs" ]; then
    IFS='|' read -r name venv marks envs <<<"${pending[0]}"
    pending=("${pending[@]:1}")
    echo "== starting $name ($venv, -m \"$marks\")"
    started[$name]=$(date +%s)
    (
      trap 'kill -TERM "$child" 2>/dev/null' TERM
      # shellcheck disable=SC2086 # $envs is a list of NAME=value words by construction
      env $envs timeout --kill-after=30 "${RUN_TIMEOUT:-1800}" \
        "$venv/bin/python" -m pytest -q --durations=10 -m "$marks" \
        -o cache_dir=".pytest_cache/$name" "$@" </dev/null >"$logs/$name.log" 2>&1 &
      child=$!
      wait "$child"
      echo $? >"$logs/$name.rc"
    ) &
    running+=("$name")
    continue
  fi
  sleep 1
done

echo
echo "======== ftauth test matrix ($(($(date +%s) - start_all))s) ========"
printf '%-32s %s\n' "lint and checks" "$lint"
for run in "${runs[@]}"; do
  echo "${result[${run%%|*}]}"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all passed"
