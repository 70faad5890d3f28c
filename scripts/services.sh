#!/usr/bin/env bash
# Start the servers a site needs when they are not running yet: PostgreSQL (127.0.0.1:5432,
# user postgres, trust) and Redis (127.0.0.1:6379). That is all `make serve` and `make bench`
# need; the test suite's tools (Chromium, Node.js) are scripts/test-tools.sh's.
# Idempotent: a running service is left alone. Needs root (or sudo) only to start one.
set -euo pipefail

as_root=()
[ "$(id -u)" = 0 ] || as_root=(sudo -n)

wait_for() {  # wait_for <what> <command...>: up to 30 s
  local what=$1
  shift
  for _ in $(seq 30); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  echo "services.sh: $what did not come up" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  command -v pg_ctlcluster >/dev/null || { echo "services.sh: pg_ctlcluster missing" >&2; exit 1; }
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  echo "services.sh: starting PostgreSQL $version"
  "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  echo "services.sh: starting Redis"
  "${as_root[@]}" mkdir -p /var/lib/redis /var/log/redis
  # No persistence: ftauth and the suite use Redis as a cache only.
  "${as_root[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
fi
