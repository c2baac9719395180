#!/usr/bin/env bash
# nodes.sh — end-to-end throughput and CPU per message with the store Tern runs on:
# one node on SQLite, one node on PostgreSQL, two nodes sharing one PostgreSQL.
# Everything runs on this machine and on loopback, so the point is the cost per message
# and the absence of contention between nodes, not a speed-up.
#
#   smtp-source (COUNT, split over the nodes) --> tern node(s) --> smtp-sink 127.0.0.1:$SINK_PORT
#
# For each set-up: seconds until smtp-sink has every message, messages per second, and
# CPU seconds of the tern processes and of PostgreSQL (the postmaster and its backends),
# per 1,000 messages.
#
# Usage (as root: PostgreSQL runs as the postgres user):  Benchmarks/nodes.sh
# Environment (defaults in brackets):
#   COUNT [20000]  SESSIONS [20] (per node)  SIZE [5000]  RUNS [1]
#   MODES ["sqlite pg1 pg2"]
#   BASE_PORT [13500]  SINK_PORT [13590]
#   SKIP_BUILD=1  TERN_SCRATCH_PATH  as in accept-rate.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
COUNT=${COUNT:-20000} SESSIONS=${SESSIONS:-20} SIZE=${SIZE:-5000} RUNS=${RUNS:-1}
MODES=${MODES:-"sqlite pg1 pg2"}
BASE_PORT=${BASE_PORT:-13500} SINK_PORT=${SINK_PORT:-13590}
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[nodes] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x /usr/sbin/smtp-source ] || die "smtp-source missing: apt-get install postfix"
. "$REPO/Benchmarks/common.sh"
require_free_ports "$SINK_PORT" $(seq "$BASE_PORT" $((BASE_PORT + 7)))
release_tern_binary

WORK=$(mktemp -d /tmp/tern-nodes.XXXXXX)
export TERN_POSTGRES_STATE="$WORK/postgres.state"
# PostgreSQL with its durable defaults (fsync on), as SQLite syncs every commit too.
export TERN_POSTGRES_DURABLE=1
PIDS=() SINK_PID=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
  bash "$REPO/scripts/postgres.sh" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_URL=""
if [[ " $MODES " == *" pg"* ]]; then
  PG_URL=$(bash "$REPO/scripts/postgres.sh" start)
  log "PostgreSQL at $PG_URL"
fi
psql_bin() { command -v psql || ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -1; }

# CPU seconds (user + system) of a process, with its waited-for children.
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
tick_rate=$(getconf CLK_TCK)
# PostgreSQL's CPU: the postmaster (its ended backends included) and the live backends.
pg_ticks() {
  local total=0 pid
  for pid in $(pgrep -u postgres 2>/dev/null); do
    total=$((total + $(cpu_ticks "$pid")))
  done
  echo "$total"
}

sink_count() {
  local t; t=$(tail -c 120 "$WORK/sink.out" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1)
  echo "${t#mesg=}"
}

# node_config N STORE_URL: a config for node N (ports BASE_PORT + 4N …).
node_config() {
  local n=$1 url=$2 base=$((BASE_PORT + 4 * $1))
  mkdir -p "$WORK/node$n"
  cat > "$WORK/node$n/tern.yaml" <<YAML
data_dir: "$WORK/node$n/data"
hostname: node$n.bench.test
smtp:
  submission:
    listen: "127.0.0.1:$base"
    tls_listen: "127.0.0.1:$((base + 1))"
  mx:
    listen: "127.0.0.1:$((base + 2))"
  limits:
    max_connections_per_ip: 200
http:
  listen: "127.0.0.1:$((base + 3))"
  public_url: "http://127.0.0.1:$((base + 3))"
delivery:
  routes:
    "*": "127.0.0.1:$SINK_PORT"
  retry_schedule: [1]
YAML
  [ -n "$url" ] && printf 'store:\n  url: "%s"\n' "$url" >> "$WORK/node$n/tern.yaml"
  echo "$WORK/node$n/tern.yaml"
}

run_mode() {
  local mode=$1 run=$2 nodes url=""
  case $mode in
    sqlite) nodes=1 ;;
    pg1) nodes=1 ;;
    pg2) nodes=2 ;;
    *) die "unknown mode $mode" ;;
  esac
  rm -rf "$WORK"/node*
  if [ "$mode" != sqlite ]; then
    local db="bench_${mode}_$run"
    "$(psql_bin)" "$PG_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    url="${PG_URL%/*}/$db"
  fi
  : > "$WORK/sink.out"
  smtp-sink -u nobody -c -m 512 "127.0.0.1:$SINK_PORT" 1024 > "$WORK/sink.out" 2>/dev/null &
  SINK_PID=$!
  PIDS=()
  local n config
  for n in $(seq 0 $((nodes - 1))); do
    config=$(node_config "$n" "$url")
    [ "$n" -eq 0 ] && { "$BIN" credential add bench --network 127.0.0.0/8 --config "$config" >/dev/null || die "credential add failed"; }
    "$BIN" serve --config "$config" > "$WORK/node$n/tern.log" 2>&1 &
    PIDS+=($!)
  done
  for n in $(seq 0 $((nodes - 1))); do
    local port=$((BASE_PORT + 4 * n)) ok=0
    for _ in $(seq 1 300); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { ok=1; break; }
      sleep 0.1
    done
    [ "$ok" = 1 ] || die "node $n did not start: $(tail -5 "$WORK/node$n/tern.log")"
  done
  sleep 3  # the credential cache and heartbeats settle

  local tern_before=0 pg_before pid
  for pid in "${PIDS[@]}"; do tern_before=$((tern_before + $(cpu_ticks "$pid"))); done
  pg_before=$(pg_ticks)
  local start end per=$((COUNT / nodes)) sources=()
  start=$(date +%s.%N)
  for n in $(seq 0 $((nodes - 1))); do
    smtp-source -s "$SESSIONS" -m "$per" -l "$SIZE" -f a@example.com -t b@example.net \
      "127.0.0.1:$((BASE_PORT + 4 * n))" >/dev/null 2>&1 &
    sources+=($!)
  done
  local total=$((per * nodes)) deadline=$(( $(date +%s) + 900 )) got=0
  while :; do
    got=$(sink_count); got=${got:-0}
    [ "$got" -ge "$total" ] && break
    [ "$(date +%s)" -ge "$deadline" ] && { log "timeout: $got/$total at the sink"; break; }
    sleep 0.05
  done
  end=$(date +%s.%N)
  for pid in "${sources[@]}"; do wait "$pid" || true; done
  local tern_after=0 pg_after
  for pid in "${PIDS[@]}"; do tern_after=$((tern_after + $(cpu_ticks "$pid"))); done
  pg_after=$(pg_ticks)
  [ "$mode" = sqlite ] && { pg_after=0; pg_before=0; }
  awk -v mode="$mode" -v nodes="$nodes" -v total="$total" -v got="$got" -v s="$start" -v e="$end" \
      -v tc=$((tern_after - tern_before)) -v pc=$((pg_after - pg_before)) -v hz="$tick_rate" 'BEGIN{
    t = e - s
    printf "%-6s nodes=%d delivered=%d/%d seconds=%.1f msg/s=%.0f tern_cpu_s=%.1f (%.2f per 1k) db_cpu_s=%.1f (%.2f per 1k)\n",
      mode, nodes, got, total, t, got / t, tc / hz, tc / hz / got * 1000, pc / hz, pc / hz / got * 1000 }'
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
}

echo "# $COUNT x ${SIZE}B, $SESSIONS smtp-source sessions per node, $(nproc) cores; end to end at smtp-sink"
for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    run_mode "$mode" "$run"
  done
done
