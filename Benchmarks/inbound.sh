#!/usr/bin/env bash
# inbound.sh — messages per second that Tern's MX listener accepts (committed to the
# store before each 250), with smtp-source on loopback; then the report parser's
# throughput on the fixture corpus (Benchmarks/reports.sh).
#
#   smtp-source --> tern serve MX 127.0.0.1:$((TERN_PORT + 2))  (inbound route "bench.example: store")
#
# Usage: Benchmarks/inbound.sh
# Environment (defaults in brackets):
#   TERN_BENCH_DIR  [../shared/bench relative to the repo]  where smtp-load.sh is
#   COUNT [20000]  SESSIONS [20]  SIZE [5000]  RUNS [3]  TERN_PORT [12687]
#   SKIP_BUILD=1  use the existing release build;  TERN_SCRATCH_PATH  SwiftPM scratch path
#   SKIP_PARSER=1  skip the report parser benchmark
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
BENCH=${TERN_BENCH_DIR:-$REPO/../shared/bench}
COUNT=${COUNT:-20000} SESSIONS=${SESSIONS:-20} SIZE=${SIZE:-5000} RUNS=${RUNS:-3}
TERN_PORT=${TERN_PORT:-12687}
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf '[inbound] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -f "$BENCH/smtp-load.sh" ] || die "smtp-load.sh not found in $BENCH (set TERN_BENCH_DIR)"
[ -x /usr/sbin/smtp-source ] || die "smtp-source missing: apt-get install postfix"

. "$REPO/Benchmarks/common.sh"
MX_PORT=$((TERN_PORT + 2)) SINK_PORT=$((TERN_PORT + 4))
require_free_ports "$TERN_PORT" $((TERN_PORT + 1)) "$MX_PORT" $((TERN_PORT + 3)) "$SINK_PORT"
release_tern_binary

WORK=$(mktemp -d /tmp/tern-inbound.XXXXXX)
TERN_PID=""
cleanup() {
  stop_tern
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$WORK/tern.yaml" <<YAML
data_dir: "$WORK/data"
hostname: bench.test
smtp:
  submission:
    listen: "127.0.0.1:$TERN_PORT"
    tls_listen: "127.0.0.1:$((TERN_PORT + 1))"
  mx:
    listen: "127.0.0.1:$MX_PORT"
    max_recipients_per_minute: 100000000
  limits:
    max_connections_per_ip: 200
http:
  listen: "127.0.0.1:$((TERN_PORT + 3))"
  public_url: "http://127.0.0.1:$((TERN_PORT + 3))"
delivery:
  enabled: false
inbound:
  routes:
    "bench.example": store
YAML

start_tern "$WORK/tern.yaml" "$MX_PORT" "$WORK/tern.log"
log "tern pid $TERN_PID, MX on 127.0.0.1:$MX_PORT"

# Nothing is relayed, so the sink never completes: -S 2 ends each run once smtp-source is done.
bash "$BENCH/smtp-load.sh" -n "$COUNT" -c "$SESSIONS" -l "$SIZE" -r "$RUNS" -T 600 -S 2 \
  -f sender@remote.example -t inbox@bench.example "127.0.0.1:$MX_PORT" "$SINK_PORT" | tee "$WORK/load.out" >&2 || true
RATE=$(sed -n 's/.*median accepted=\([0-9.]*\) msg\/s.*/\1/p' "$WORK/load.out" | tail -1)
STORED=$(sqlite3 "file:$WORK/data/tern.sqlite?mode=ro" 'SELECT count(*) FROM inbound_messages' 2>/dev/null || echo "?")
stop_tern

echo
echo "MX accepted msg/s (median of $RUNS, $COUNT x ${SIZE}B, $SESSIONS sessions, $(nproc) cores): ${RATE:-?}  (stored: $STORED of $((COUNT * RUNS)))"
if [ "${SKIP_PARSER:-0}" != 1 ]; then
  # SKIP_BUILD above is about tern; the parser benchmark builds its own (small) binary.
  SKIP_BUILD=0 bash "$REPO/Benchmarks/reports.sh"
fi
