#!/usr/bin/env bash
# scripts/postgres.sh — a throwaway PostgreSQL server for Tern's tests.
#
#   scripts/postgres.sh start   install Debian's postgresql if missing, initdb into a new
#                               temporary folder, start the server on a free 127.0.0.1 port
#                               (unix socket inside that folder), create role and database
#                               `tern` (the role may create databases: each test makes its own), print the URL
#   scripts/postgres.sh url     print the URL of the running server
#   scripts/postgres.sh stop    stop the server and delete its folder
#
# The server runs with fsync=off (tests), or with PostgreSQL's durable defaults when
# TERN_POSTGRES_DURABLE=1 (benchmarks).
#
# Tests read the URL from TERN_TEST_POSTGRES_URL:
#   export TERN_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
#
# Works as root: initdb and the server run as the `postgres` user (created by Debian's
# package), which owns the folder. State (folder, port) is kept in $TERN_POSTGRES_STATE
# (default /tmp/tern-postgres.state), so one server per state file.
set -euo pipefail

STATE="${TERN_POSTGRES_STATE:-/tmp/tern-postgres.state}"
DB_USER=tern
DB_PASSWORD=tern
DB_NAME=tern
RUN_AS=postgres

say() { printf 'postgres.sh: %s\n' "$*" >&2; }

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
  printf '%s\n' "$dir"
}

install_postgres() {
  pg_bin >/dev/null && return 0
  say "installing Debian's postgresql"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  pg_bin >/dev/null || { say "no initdb under /usr/lib/postgresql/*/bin after installing"; exit 1; }
}

# Runs a command as the server's user (root cannot run initdb or postgres).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$RUN_AS" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

url() { printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$DB_USER" "$DB_PASSWORD" "$1" "$DB_NAME"; }

read_state() {
  [ -f "$STATE" ] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  [ -n "${PGDIR:-}" ] && [ -n "${PGPORT:-}" ]
}

running() {
  read_state || return 1
  local bin
  bin="$(pg_bin)" || return 1
  as_owner "$bin/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1
}

start() {
  if running; then
    url "$PGPORT"
    return 0
  fi
  # A state file left by a server that is gone (a reboot, a killed session): forget it.
  if read_state; then
    case "$PGDIR" in /tmp/tern-postgres.*) rm -rf "$PGDIR" ;; esac
    rm -f "$STATE"
  fi
  install_postgres
  local bin dir port
  bin="$(pg_bin)"
  dir="$(mktemp -d /tmp/tern-postgres.XXXXXX)"
  port="$(free_port)"
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$RUN_AS" >/dev/null 2>&1 || useradd --system --home-dir "$dir" --shell /usr/sbin/nologin "$RUN_AS"
    chown "$RUN_AS" "$dir"
  else
    RUN_AS="$(id -un)"
  fi
  chmod 700 "$dir"
  local pwfile="$dir/superuser.pw"
  printf '%s\n' "$DB_PASSWORD" >"$pwfile"
  [ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$pwfile"
  # Local (unix socket) connections trust the OS user; TCP connections need a password
  # (SCRAM-SHA-256), so the client's authentication is exercised.
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$pwfile"
  # Tests need no fsync; benchmarks (TERN_POSTGRES_DURABLE=1) keep PostgreSQL's default,
  # so that a commit costs what it costs in production.
  local durability="-c fsync=off"
  [ "${TERN_POSTGRES_DURABLE:-0}" = 1 ] && durability=""
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir $durability -c max_connections=100" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }
  printf 'PGDIR=%q\nPGPORT=%q\nRUN_AS=%q\n' "$dir" "$port" "$RUN_AS" >"$STATE"
  as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD'" \
    -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2
  url "$port"
}

stop() {
  if ! read_state; then
    say "not running (no $STATE)"
    return 0
  fi
  local bin
  if bin="$(pg_bin)"; then
    as_owner "$bin/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2 || true
  fi
  case "$PGDIR" in
    /tmp/tern-postgres.*) rm -rf "$PGDIR" ;;
  esac
  rm -f "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url)
    running || { say "not running; use: scripts/postgres.sh start"; exit 1; }
    url "$PGPORT"
    ;;
  *) echo "usage: scripts/postgres.sh start|stop|url" >&2; exit 2 ;;
esac
